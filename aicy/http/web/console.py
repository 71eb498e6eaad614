"""The customer console under ``/console``: sign-in, overview (balance, ledger), usage, API keys.

Pages are plain HTML forms (no script): every POST carries a CSRF token (the session's, or before sign-in
the double-submit form cookie's), and a refused form is shown again with the reason and the right status.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from aicy.accounting.attempts import FailureLimiter
from aicy.errors import AicyError
from aicy.http.auth import client_ip
from aicy.http.web.charts import bar_chart
from aicy.http.web.guide import money
from aicy.http.web.language import Lang, choose
from aicy.http.web.messages import CONSOLE
from aicy.http.web.routes import PAGE_HEADERS, page
from aicy.http.web.session import Session, Sessions, same_token
from aicy.serving.console import PERIODS, Console
from aicy.serving.services import Services
from aicy.storage.keys import KeyRecord
from aicy.storage.logins import Login, LoginStore

MAX_FORM_BYTES = 64 * 1024
LOGIN = "/console/login"


class BadForm(AicyError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_form"


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form, at most 64 KiB and 100 fields; the first value of each field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadForm("The form is too large.", status=413)
    fields = (
        parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=100)
        if body
        else {}
    )
    return {k: v[0] for k, v in fields.items() if "\x00" not in k}


def key_state(key: KeyRecord, now: float) -> str:
    if key.revoked_at:
        return "revoked"
    if key.policy.suspended_reason:
        return "suspended"
    if not key.enabled:
        return "disabled"
    if key.policy.expires_at is not None and key.policy.expires_at <= now:
        return "expired"
    return "active"


def key_limits(key: KeyRecord) -> list[str]:
    p = key.policy
    out = []
    if p.models:
        out.append("models: " + ", ".join(p.models))
    if p.ips:
        out.append("ips: " + ", ".join(p.ips))
    if p.expires_at:
        out.append("expires: " + time.strftime("%Y-%m-%d", time.gmtime(p.expires_at)))
    for name, value in (
        ("spend", p.spend_limit),
        ("daily", p.spend_limit_daily),
        ("monthly", p.spend_limit_monthly),
    ):
        if value is not None:
            out.append(f"{name}: {money(value)}")
    for name, rate in (("rpm", p.rpm), ("tpm", p.tpm)):
        if rate is not None:
            out.append(f"{name}: {rate}")
    return out


def _utc(ms_or_s: int | None, millis: bool = False) -> str:
    if not ms_or_s:
        return ""
    seconds = ms_or_s / 1000 if millis else ms_or_s
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


def console_routes(env: Environment) -> list[BaseRoute]:
    failures: dict[str, FailureLimiter] = {}  # one per app, made with the app's settings at first use

    def tools(request: Request) -> tuple[Services, Console, Sessions]:
        services: Services = request.app.state.services
        settings = services.settings
        if "limiter" not in failures:
            failures["limiter"] = FailureLimiter(settings.login_failures, 600)
        logins = LoginStore(services.keys.engine, services.keys.tx)
        sessions = Sessions(
            request.app.state.session_secret,
            int(settings.console_session_hours * 3600),
            settings.resolved_public_url.startswith("https://"),
        )
        return services, Console(services, logins, failures["limiter"]), sessions

    def render(
        template: str, lang: Lang, status: int = 200, remember: bool = False, **context: Any
    ) -> Response:
        html = env.get_template(template).render(
            lang=lang,
            other_lang="en" if lang == "zh" else "zh",
            t=CONSOLE[lang],
            money=money,
            utc=_utc,
            **context,
        )
        response = page(html, lang if remember else None)
        response.status_code = status
        return response

    def redirect(url: str) -> Response:
        return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)

    Handler = Callable[[Request, Console, Sessions, Session, Login, Lang], Awaitable[Response]]

    def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            _, console, sessions = tools(request)
            session = sessions.read(request)
            login = await console.current(session.account_id, session.epoch) if session else None
            if session is None or login is None:
                response = redirect(LOGIN)
                sessions.end(response)
                return response
            lang, _ = choose(request)
            try:
                if request.method == "POST":
                    form = await read_form(request)
                    if not same_token(session.csrf, form.get("csrf")):
                        raise BadForm("The form expired; reload the page and try again.", status=403)
                    request.state.form = form
                return await handler(request, console, sessions, session, login, lang)
            except AicyError as exc:
                context: dict[str, Any] = {"login": login, "csrf": session.csrf, "message": exc.message}
                return render("message.html", lang, exc.status, **context)

        return endpoint

    async def login_page(request: Request) -> Response:
        services, console, sessions = tools(request)
        lang, remember = choose(request)
        session = sessions.read(request)
        if session and await console.current(session.account_id, session.epoch):
            return redirect("/console")
        new_cookies: dict[str, str] = {}
        token = sessions.form_token(request, new_cookies)
        error, status, name, extra = None, 200, "", {}
        if request.method == "POST":
            form = await read_form(request)
            name = form.get("name", "")[:320]
            if not same_token(request.cookies.get("aicy_form"), form.get("csrf")):
                error, status = "The form expired; reload the page and try again.", 403
            else:
                try:
                    login = await console.sign_in(name, form.get("password", ""), client_ip(request) or "?")
                except AicyError as exc:
                    error, status, extra = exc.message, exc.status, exc.headers or {}
                else:
                    response = redirect("/console")
                    sessions.start(response, login.account_id, login.epoch)
                    return response
        response = render(
            "login.html",
            lang,
            status,
            remember,
            csrf=token,
            error=error,
            name=name,
            registration=services.settings.registration == "open",
        )
        for value in new_cookies.values():
            sessions.set_form_cookie(response, value)
        response.headers.update(extra)
        return response

    async def register_page(request: Request) -> Response:
        services, console, sessions = tools(request)
        lang, remember = choose(request)
        if services.settings.registration != "open":
            return render("message.html", lang, 404, message="Registration is closed.")
        new_cookies: dict[str, str] = {}
        token = sessions.form_token(request, new_cookies)
        error, status, form = None, 200, {}
        if request.method == "POST":
            form = await read_form(request)
            if not same_token(request.cookies.get("aicy_form"), form.get("csrf")):
                error, status = "The form expired; reload the page and try again.", 403
            else:
                try:
                    login = await console.register(
                        form.get("name", ""), form.get("email", ""), form.get("password", "")
                    )
                except AicyError as exc:
                    error, status = exc.message, exc.status
                else:
                    response = redirect("/console")
                    sessions.start(response, login.account_id, login.epoch)
                    return response
        response = render("register.html", lang, status, remember, csrf=token, error=error, form=form)
        for value in new_cookies.values():
            sessions.set_form_cookie(response, value)
        return response

    @signed_in
    async def sign_out(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        response = redirect(LOGIN)
        sessions.end(response)
        return response

    @signed_in
    async def overview(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        account = await console.account(login.account_id)
        ledger = await console.ledger(login.account_id)
        return render("overview.html", lang, login=login, csrf=session.csrf, account=account, ledger=ledger)

    @signed_in
    async def usage(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        query = dict(request.query_params)
        view = await console.usage(login.account_id, query)
        cost = bar_chart([(d["day"], d["cost"]) for d in view.daily], [money(d["cost"]) for d in view.daily])
        tokens = bar_chart([(d["day"], d["input_tokens"] + d["output_tokens"]) for d in view.daily])
        filters = {k: query[k] for k in ("days", "model", "key", "status") if query.get(k)}

        def page_link(number: int) -> str:
            return "/console/usage?" + urlencode({**filters, "page": number})

        return render(
            "usage.html",
            lang,
            login=login,
            csrf=session.csrf,
            view=view,
            periods=PERIODS,
            query=query,
            cost_chart=cost,
            token_chart=tokens,
            page_link=page_link,
            csv_link="/console/usage.csv?" + urlencode(filters),
        )

    @signed_in
    async def usage_csv(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        body = await console.usage_csv(login.account_id, dict(request.query_params))
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={**PAGE_HEADERS, "content-disposition": 'attachment; filename="aicy-usage.csv"'},
        )

    async def keys_view(
        console: Console, session: Session, login: Login, lang: Lang, **extra: Any
    ) -> Response:
        now = time.time()
        keys = [(k, key_state(k, now), key_limits(k)) for k in await console.keys(login.account_id)]
        status = extra.pop("status", 200)
        return render("keys.html", lang, status, login=login, csrf=session.csrf, keys=keys, **extra)

    @signed_in
    async def keys(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        if request.method == "GET":
            return await keys_view(console, session, login, lang, form={})
        form = request.state.form
        try:
            record, secret = await console.create_key(login, form)
        except AicyError as exc:
            return await keys_view(
                console, session, login, lang, form=form, error=exc.message, status=exc.status
            )
        return await keys_view(console, session, login, lang, form={}, new_key=secret, new_key_id=record.id)

    @signed_in
    async def revoke(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        await console.revoke_key(login.account_id, request.path_params["key_id"])
        return redirect("/console/keys")

    @signed_in
    async def playground(
        request: Request, console: Console, sessions: Sessions, session: Session, login: Login, lang: Lang
    ) -> Response:
        models = console.services.router.servable()
        return render("playground.html", lang, login=login, csrf=session.csrf, models=models)

    return [
        Route("/console", overview, methods=["GET"]),
        Route("/console/playground", playground, methods=["GET"]),
        Route(LOGIN, login_page, methods=["GET", "POST"]),
        Route("/console/register", register_page, methods=["GET", "POST"]),
        Route("/console/logout", sign_out, methods=["POST"]),
        Route("/console/usage", usage, methods=["GET"]),
        Route("/console/usage.csv", usage_csv, methods=["GET"]),
        Route("/console/keys", keys, methods=["GET", "POST"]),
        Route("/console/keys/{key_id}/revoke", revoke, methods=["POST"]),
    ]
