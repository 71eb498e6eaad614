"""The operator console under ``/operator``, for admin accounts only (anyone else is told "not found"):
backends live, channels with their health and a test button, models and prices, accounts with top-ups and
adjustments, keys (suspended ones first), usage across accounts.

Changes go through the same services, with the same input rules, as the admin API; each takes effect at
once (the catalog is reloaded) and is recorded in the audit log with the operator's account name.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from aicy.accounting.money import AmountError, parse_usd
from aicy.accounting.passwords import password_problem
from aicy.errors import InvalidRequest, NotFound
from aicy.http.web.charts import bar_chart
from aicy.http.web.console import key_limits, key_state
from aicy.http.web.guide import money
from aicy.http.web.language import Lang
from aicy.http.web.pages import Pages
from aicy.http.web.session import Session, Sessions
from aicy.serving.accounts_admin import AccountsAdmin
from aicy.serving.catalog_admin import try_channel
from aicy.serving.codes import MAX_BATCH, CodesAdmin
from aicy.serving.console import PERIODS, Console, set_login, whole_number
from aicy.serving.probes.report import latest_checks, run_figures
from aicy.storage.audit import Change, audit_entries, record
from aicy.storage.billing import GROUPS, usage_report
from aicy.storage.codes import TopupCodeStore
from aicy.storage.logins import Login, LoginStore
from aicy.storage.probes import ProbeStore
from aicy.storage.usage_query import channel_latencies


def micro_units(value: str, param: str) -> int:
    """A price typed as USD per million tokens ("1.25") as integer micro-units, by the admin input rules
    for money (ASCII digits, at most six decimals), and not negative."""
    try:
        amount = parse_usd(value.strip())
    except AmountError as exc:
        raise InvalidRequest(f"'{param}': {exc}", param=param, code=exc.code) from None
    if amount < 0:
        raise InvalidRequest(f"'{param}' must not be negative.", param=param)
    return amount


def operator_routes(pages: Pages) -> list[BaseRoute]:
    render, redirect = pages.render, pages.redirect

    async def audit(
        console: Console, login: Login, action: str, target: str, details: dict[str, Any]
    ) -> None:
        change = Change(f"console:{login.name}", action, target, details)
        await console.services.keys.tx.run(lambda tx: record(tx, change))

    async def dashboard(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        services = console.services
        channels = []
        for channel in await services.catalog.channels():
            breaker = services.router.breaker(channel.name)
            channels.append((channel, breaker.state, breaker.last_error, breaker.failures))
        tested = getattr(request.state, "tested", None)
        latency = await channel_latencies(services.billing.engine, int(time.time()) - 86_400)
        return render(
            "operator.html",
            lang,
            login=login,
            csrf=session.csrf,
            backends=sorted(services.admission.snapshot().items()),
            channels=channels,
            tested=tested,
            latency=latency,
        )

    async def live(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        snapshot = sorted(console.services.admission.snapshot().items())
        return render("operator_live.html", lang, login=login, csrf=session.csrf, backends=snapshot)

    async def channel_change(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        form, name = request.state.form, request.path_params["name"]
        services = console.services
        if form.get("action") == "test":
            channel = await services.catalog.channel(name)
            request.state.tested = await try_channel(channel, services.backend_for(channel))
            await audit(console, login, "channel.test", name, {"ok": request.state.tested.get("ok")})
            return await dashboard(request, console, sessions, session, login, lang)
        patch: dict[str, Any] = {}
        if form.get("action") in ("enable", "disable"):
            patch["enabled"] = form["action"] == "enable"
        else:
            for field in ("priority", "weight", "capacity"):
                if field in form:
                    patch[field] = whole_number(form[field], field)
            if patch.get("priority") is None:
                patch.pop("priority", None)
            if patch.get("weight") is None:
                patch.pop("weight", None)
        await services.catalog.update_channel(name, patch)
        await request.app.state.catalog_sync.load()
        await audit(console, login, "channel.update", name, patch)
        return redirect("/operator")

    async def models_page(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        services = console.services
        if request.method == "POST":
            form = request.state.form
            model_id = form.get("model", "")
            prices = {
                "input": micro_units(form.get("input", ""), "input"),
                "cached_input": micro_units(form.get("cached_input", ""), "cached_input"),
                "output": micro_units(form.get("output", ""), "output"),
            }
            await services.catalog.patch_model(model_id, {"prices": prices})
            await request.app.state.catalog_sync.load()
            await audit(console, login, "model.prices", model_id, prices)
            return redirect("/operator/models")
        models = await services.catalog.models()
        status = {m.id: services.router.serves(m.id) for m in models}
        return render(
            "operator_models.html", lang, login=login, csrf=session.csrf, models=models, serves=status
        )

    async def accounts_page(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        if request.method == "POST":
            form = request.state.form
            services = console.services
            problem = password_problem(form["password"]) if form.get("password") else None
            if problem:  # checked before anything is made
                raise InvalidRequest(problem, param="password")
            created = await AccountsAdmin(services.keys, services.billing).create_account(
                {"name": form.get("name", "").strip()}
            )
            if form.get("password"):
                logins = LoginStore(services.keys.engine, services.keys.tx)
                await set_login(
                    services.keys, logins, created.id, form["password"], form.get("email") or None
                )
            details = {"email": form.get("email") or None, "console": bool(form.get("password"))}
            await audit(console, login, "account.create", created.name, details)
            return redirect(f"/operator/accounts/{created.id}")
        wanted = request.query_params.get("q", "").strip().lower()
        found = [
            a
            for a in await console.services.keys.list_accounts()
            if not wanted or wanted in a.name.lower() or wanted == a.id
        ]
        return render(
            "operator_accounts.html", lang, login=login, csrf=session.csrf, accounts=found[:500], q=wanted
        )

    async def account_page(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        admin = AccountsAdmin(console.services.keys, console.services.billing)
        account = await admin.account(request.path_params["account"])
        error = None
        if request.method == "POST":
            form = request.state.form
            reason = "topup" if form.get("kind") == "topup" else "adjustment"
            body = {"amount": form.get("amount", "").strip(), "note": form.get("note") or None}
            # the form's one-time token makes a double submit move the money once
            done = await admin.credit(account.id, body, reason, form.get("once") or None)
            if not done.replayed:
                await audit(console, login, f"account.{reason}", account.name, body)
            return redirect(f"/operator/accounts/{account.id}")
        now = time.time()
        keys = [
            (k, key_state(k, now), key_limits(k)) for k in await console.services.keys.list_keys(account.id)
        ]
        return render(
            "operator_account.html",
            lang,
            login=login,
            csrf=session.csrf,
            account=account,
            ledger=await console.ledger(account.id),
            keys=keys,
            once=secrets.token_urlsafe(18),
            error=error,
        )

    async def keys_page(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        services = console.services
        if request.method == "POST":
            form = request.state.form
            key_id = request.path_params.get("key_id", "")
            owned = [k for k in await services.keys.list_keys() if k.id == key_id]
            if not owned:
                raise NotFound("No such key.", code="key_not_found")
            if form.get("action") == "revoke":
                await services.keys.revoke(key_id)
            elif form.get("action") == "unsuspend":
                await services.keys.update_key(key_id, {"suspended_at": None, "suspended_reason": None})
            else:
                raise InvalidRequest("Unknown action.", param="action")
            services.key_cache.clear()
            await audit(console, login, f"key.{form['action']}", key_id, {"account": owned[0].account_name})
            return redirect("/operator/keys")
        now = time.time()
        keys = [(k, key_state(k, now), key_limits(k)) for k in await services.keys.list_keys()]
        keys.sort(key=lambda row: (row[1] != "suspended", -row[0].created_at))
        return render("operator_keys.html", lang, login=login, csrf=session.csrf, keys=keys[:1000])

    async def usage_page(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        query = request.query_params
        days = whole_number(query.get("days", ""), "days") or 30
        if days not in PERIODS:
            raise InvalidRequest(f"'days' must be one of {', '.join(map(str, PERIODS))}.", param="days")
        group_by = query.get("group_by", "model")
        if group_by not in GROUPS:
            raise InvalidRequest(f"'group_by' must be one of {', '.join(GROUPS)}.", param="group_by")
        engine = console.services.billing.engine
        until = int(time.time()) + 1
        since = until - days * 86_400
        daily = list(reversed(await usage_report(engine, "day", None, since, until)))
        rows = await usage_report(engine, group_by, None, since, until)
        chart = bar_chart([(d["day"], d["cost"]) for d in daily], [money(d["cost"]) for d in daily])
        return render(
            "operator_usage.html",
            lang,
            login=login,
            csrf=session.csrf,
            days=days,
            periods=PERIODS,
            group_by=group_by,
            groups=GROUPS,
            rows=rows,
            chart=chart,
        )

    async def audit_page(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        entries = await audit_entries(console.services.keys.engine, limit=500)
        return render("operator_audit.html", lang, login=login, csrf=session.csrf, entries=entries)

    async def codes_page(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        services = console.services
        codes = CodesAdmin(TopupCodeStore(services.db, services.billing.tx))
        actor = f"console:{login.name}"
        made: list[str] = []
        if request.method == "POST":
            form = request.state.form
            if form.get("action") == "revoke":
                await codes.revoke({"batch": form.get("batch", "")}, actor)
                return redirect("/operator/codes")
            now = int(time.time())
            days = whole_number(form.get("expires_days", ""), "expires_days")
            body = {
                "value": form.get("value", "").strip(),
                "count": whole_number(form.get("count", ""), "count") or 1,
                "expires_at": now + days * 86_400 if days else None,
                "note": form.get("note") or None,
            }
            made = (await codes.create(body, actor, now)).codes
        return render(
            "operator_codes.html",
            lang,
            login=login,
            csrf=session.csrf,
            batches=await codes.batches(),
            made=made,
            max_batch=MAX_BATCH,
        )

    async def probes_page(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        store = ProbeStore(console.services.db)
        checks = latest_checks(await store.checks(days=30))
        runs = run_figures(await store.results(days=7))[-50:]
        return render(
            "operator_probes.html",
            lang,
            login=login,
            csrf=session.csrf,
            checks=checks,
            runs=list(reversed(runs)),
        )

    guard = pages.signed_in
    return [
        Route("/operator", guard(dashboard, operator=True), methods=["GET"]),
        Route("/operator/live", guard(live, operator=True), methods=["GET"]),
        Route("/operator/channels/{name}", guard(channel_change, operator=True), methods=["POST"]),
        Route("/operator/models", guard(models_page, operator=True), methods=["GET", "POST"]),
        Route("/operator/accounts", guard(accounts_page, operator=True), methods=["GET", "POST"]),
        Route("/operator/accounts/{account}", guard(account_page, operator=True), methods=["GET", "POST"]),
        Route("/operator/keys", guard(keys_page, operator=True), methods=["GET"]),
        Route("/operator/keys/{key_id}", guard(keys_page, operator=True), methods=["POST"]),
        Route("/operator/codes", guard(codes_page, operator=True), methods=["GET", "POST"]),
        Route("/operator/usage", guard(usage_page, operator=True), methods=["GET"]),
        Route("/operator/audit", guard(audit_page, operator=True), methods=["GET"]),
        Route("/operator/probes", guard(probes_page, operator=True), methods=["GET"]),
    ]
