"""The ``aicy`` command: serve, keys, accounts, top-up codes, models, channels, probes."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.accounting.money import MICROS_PER_USD
from aicy.bootstrap import ADMIN_ACCOUNT, first_start, how_to_call, upstream_client
from aicy.domain.channels import Channel
from aicy.domain.models import ModelInfo, embedded_model
from aicy.errors import AicyError
from aicy.routing.catalog_json import model_to_json
from aicy.serving.accounts_admin import AccountsAdmin, key_json
from aicy.serving.catalog_admin import CatalogAdmin, try_channel
from aicy.serving.codes import CodesAdmin
from aicy.serving.console import set_login
from aicy.serving.probes.plot import PlotUnavailable, write_plot
from aicy.serving.probes.report import latest_checks, run_figures
from aicy.serving.probes.runner import Target
from aicy.serving.probes.service import ProbeRun, probe
from aicy.serving.probes.suite import load_suite
from aicy.settings import Settings
from aicy.storage.audit import CLI_ACTOR, Change, masked, record
from aicy.storage.billing import BillingStore
from aicy.storage.catalog import CatalogStore
from aicy.storage.codes import TopupCodeStore
from aicy.storage.crypto import SecretBox, load_or_create_secret
from aicy.storage.db import create_engine, migrate
from aicy.storage.keys import KeyStore
from aicy.storage.logins import LoginStore
from aicy.storage.probes import ProbeStore
from aicy.storage.tx import Transactor
from aicy.upstream.openai_http import HttpBackend

T = TypeVar("T")

app = typer.Typer(help="aicy: a self-hosted, OpenAI-compatible LLM API platform.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
channels_app = typer.Typer(help="Upstream channels: add, list, update, remove, test.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog (no subcommand: show it).")
accounts_app = typer.Typer(help="Accounts, balances, top-ups and the ledger.", no_args_is_help=True)
codes_app = typer.Typer(help="Top-up codes: create batches, list, revoke.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(codes_app, name="codes")
app.add_typer(keys_app, name="keys")
app.add_typer(channels_app, name="channels")
app.add_typer(models_app, name="models")
probe_app = typer.Typer(
    help="Probes: fixed prompts that check a channel serves what it claims.", no_args_is_help=True
)
app.add_typer(probe_app, name="probe")
# Piped output (scripts, tests) gets wide tables instead of Rich's 80-column wrapping.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)


@dataclass(slots=True)
class Stores:
    settings: Settings
    db: AsyncEngine
    keys: KeyStore
    catalog: CatalogAdmin
    billing: BillingStore


def run(work: Callable[[Stores], Awaitable[T]]) -> T:
    """Open the database named by the settings, migrate, run ``work``, close; errors become a clean exit."""

    async def main() -> T:
        settings = Settings()
        db = create_engine(settings.resolved_database_url)
        try:
            await migrate(db)
            box = SecretBox(load_or_create_secret(settings.data_dir, settings.secret_key))
            catalog = CatalogAdmin(CatalogStore(db, box))
            await catalog.seed()
            transactor = Transactor(db)
            try:
                return await work(
                    Stores(settings, db, KeyStore(db, transactor), catalog, BillingStore(db, transactor))
                )
            finally:
                transactor.close()
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except AicyError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None


def audited(
    work: Callable[[Stores], Awaitable[T]],
    action: str,
    target: str | Callable[[T], str],
    details: dict[str, Any] | None = None,
) -> T:
    """``run`` for a change, recorded in the audit log as the command line's (after it succeeded)."""

    async def change(stores: Stores) -> T:
        result = await work(stores)
        named = target(result) if callable(target) else target
        entry = Change(CLI_ACTOR, action, named, details or {})
        await stores.keys.tx.run(lambda tx: record(tx, entry))
        return result

    return run(change)


def _when(ts: int | None) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (AICY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (AICY_PORT).")] = None,
) -> None:
    """Start the API server."""
    import uvicorn

    from aicy.app import create_app

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    try:
        upstream_client(settings)  # a proxy variable that cannot be used stops the start, saying which
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    new_key = asyncio.run(first_start(settings))

    def ready() -> None:
        print(how_to_call(settings.resolved_public_url, new_key), flush=True)

    uvicorn.run(
        create_app(settings, on_ready=ready),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        loop="uvloop",
        http="httptools",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def _expiry(value: str | None) -> int | None:
    """'30d', '12h' from now, or a date/time such as 2026-12-31 (UTC)."""
    if value is None:
        return None
    units = {"d": 86_400, "h": 3_600, "m": 60}
    if value[:-1].isascii() and value[:-1].isdigit() and value[-1] in units:
        return int(time.time()) + int(value[:-1]) * units[value[-1]]
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [p.strip() for p in value.split(",") if p.strip()]


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key.")] = "key",
    account: Annotated[str, typer.Option(help="Account that owns the key (created if new).")] = "default",
    admin: Annotated[bool, typer.Option(help="An admin key (can manage aicy).")] = False,
    models: Annotated[str | None, typer.Option(help="Comma-separated models the key may use.")] = None,
    ips: Annotated[str | None, typer.Option(help="Comma-separated CIDRs the key may be used from.")] = None,
    expires: Annotated[str | None, typer.Option(help="'30d', '12h', or a date like 2026-12-31.")] = None,
    spend_limit: Annotated[str | None, typer.Option(help="Total spend cap, e.g. 25.00.")] = None,
    daily_limit: Annotated[str | None, typer.Option(help="Spend cap per UTC day.")] = None,
    monthly_limit: Annotated[str | None, typer.Option(help="Spend cap per UTC month.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    shared: Annotated[bool, typer.Option(help="Meant for many IPs: exempt from leak detection.")] = False,
) -> None:
    """Create a key; the secret is printed once, alone on the last line."""
    body = {
        "account": ADMIN_ACCOUNT if admin else account,
        "name": name,
        "role": "admin" if admin else "customer",
        "models": _csv(models),
        "ips": _csv(ips),
        "expires_at": _expiry(expires),
        "spend_limit": spend_limit,
        "spend_limit_daily": daily_limit,
        "spend_limit_monthly": monthly_limit,
        "rpm": rpm,
        "tpm": tpm,
        "shared": shared,
    }
    record, secret = audited(
        lambda s: AccountsAdmin(s.keys, s.billing).create_key(body),
        "key.create",
        lambda made: made[0].id,
        {k: v for k, v in body.items() if v is not None},
    )
    print(
        f"Created key {record.id} ({record.prefix}…) for account '{record.account_name}'. "
        "It is shown only once:",
        file=sys.stderr,
    )
    print(secret)


@keys_app.command("update")
def keys_update(key: str, patch: Annotated[str, typer.Argument(help="Fields to change, as JSON.")]) -> None:
    """Change a key's limits, e.g. '{"rpm": 60}', '{"enabled": false}' or '{"unsuspend": true}'."""
    record = audited(
        lambda s: AccountsAdmin(s.keys, s.billing).update_key(key, json.loads(patch)),
        "key.update",
        key,
        masked(json.loads(patch)),
    )
    console.print_json(json.dumps(key_json(record)))


@keys_app.command("list")
def keys_list() -> None:
    """List keys by their visible prefix."""
    records = run(lambda s: s.keys.list_keys())
    table = Table("id", "prefix", "name", "account", "role", "created", "state", "limits")
    for r in records:
        p = r.policy
        state = (
            "revoked" if r.revoked_at else "suspended" if p.suspended_reason else "on" if r.enabled else "off"
        )
        limits = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("models", p.models),
                ("ips", p.ips),
                ("rpm", p.rpm),
                ("tpm", p.tpm),
                ("spend", p.spend_limit),
            )
            if v
        )
        table.add_row(
            r.id, r.prefix + "…", r.name, r.account_name, r.role, _when(r.created_at), state, limits
        )
    console.print(table)
    for r in records:
        if r.policy.suspended_reason and not r.revoked_at:
            console.print(f"{r.prefix}…: {r.policy.suspended_reason}")


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id or visible prefix.")]) -> None:
    """Revoke a key; it is refused from the next request on."""
    count = audited(lambda s: s.keys.revoke(key), "key.revoke", key)
    if not count:
        console.print(f"No active key matches '{key}'.")
        raise typer.Exit(1)
    console.print(f"Revoked {count} key(s).")


@accounts_app.command("create")
def accounts_create(name: str) -> None:
    """Create an account (balance zero)."""
    account = audited(
        lambda s: AccountsAdmin(s.keys, s.billing).create_account({"name": name}), "account.create", name
    )
    console.print(f"Account {account.name} ({account.id}).")


@accounts_app.command("password")
def accounts_password(
    account: str,
    email: Annotated[str | None, typer.Option(help="Also let the account sign in with this e-mail.")] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Set an account's web console password (ends its open console sessions)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    record = audited(
        lambda s: set_login(s.keys, LoginStore(s.db, s.keys.tx), account, password, email),
        "account.login",
        account,
        {"email": email},
    )
    console.print(f"{record.name} can now sign in at /console.")


@accounts_app.command("list")
def accounts_list() -> None:
    """Accounts and their balances."""
    records = run(lambda s: s.keys.list_accounts())
    table = Table("id", "name", "admin", "balance", "reserved", "available")
    for a in records:
        table.add_row(
            a.id,
            a.name,
            "yes" if a.is_admin else "",
            _money(a.balance),
            _money(a.reserved),
            _money(a.balance - a.reserved),
        )
    console.print(table)


_IDEMPOTENCY_HELP = "Do it once only: the same key again prints the first result and moves no money."


@accounts_app.command("topup")
def accounts_topup(
    account: str,
    amount: Annotated[str, typer.Argument(help="USD, e.g. 50 or 12.50 (at most 6 decimals).")],
    note: Annotated[str | None, typer.Option()] = None,
    idempotency_key: Annotated[str | None, typer.Option(help=_IDEMPOTENCY_HELP)] = None,
) -> None:
    """Add money to an account, e.g. `aicy accounts topup acme 50`."""
    _credit(account, amount, "topup", note, idempotency_key)


@accounts_app.command("adjust")
def accounts_adjust(
    account: str,
    amount: Annotated[str, typer.Argument(help="Signed USD, e.g. -1.25.")],
    note: Annotated[str, typer.Option(help="Why.")],
    idempotency_key: Annotated[str | None, typer.Option(help=_IDEMPOTENCY_HELP)] = None,
) -> None:
    """Correct a balance by a signed amount, e.g. `aicy accounts adjust acme -- -1.25 --note refund`."""
    _credit(account, amount, "adjustment", note, idempotency_key)


def _credit(account: str, amount: str, reason: str, note: str | None, idempotency_key: str | None) -> None:
    """Checked by the same rules as the admin API's (the amount is a decimal string of USD here)."""
    body = {"amount": amount, "note": note}
    done = audited(
        lambda s: AccountsAdmin(s.keys, s.billing).credit(account, body, reason, idempotency_key),
        f"account.{reason}",
        account,
        {**body, "idempotency_key": idempotency_key},
    )
    record = done.account
    replayed = " (already done with this idempotency key; nothing moved)" if done.replayed else ""
    console.print(f"{record.name}: balance {_money(record.balance)}.{replayed}")


@accounts_app.command("ledger")
def accounts_ledger(account: str) -> None:
    """The latest entries of an account's ledger."""
    entries = run(lambda s: AccountsAdmin(s.keys, s.billing).ledger(account))
    table = Table("when", "amount", "reason", "reference", "note")
    for e in entries:
        table.add_row(
            _when(e["created_at"]), _money(e["amount"]), e["reason"], e["reference"] or "", e["note"] or ""
        )
    console.print(table)


def _codes(s: Stores) -> CodesAdmin:
    return CodesAdmin(TopupCodeStore(s.db, s.billing.tx))


def _decimal(micros: int) -> str:
    """Micro-units as the shortest decimal string of the currency: 10000000 -> "10", 12500000 -> "12.5"."""
    return _money(micros).rstrip("0").rstrip(".")


def _code_expiry(value: str | None) -> int | None:
    try:
        return _expiry(value)
    except ValueError:
        console.print(f"[red]--expires: '{value}' is not like 90d, 12h or 2026-12-31.[/red]")
        raise typer.Exit(1) from None


@codes_app.command("create")
def codes_create(
    value: Annotated[str, typer.Option(help="What each code credits, e.g. 10 or 12.50 (account currency).")],
    count: Annotated[int, typer.Option(help="How many codes (at most 10000).")] = 1,
    expires: Annotated[str | None, typer.Option(help="'90d', '12h', or a date like 2026-12-31.")] = None,
    note: Annotated[str | None, typer.Option(help="What the batch is for (shown in listings).")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV: code,value,expires_at,batch.")] = False,
) -> None:
    """Create a batch of codes; they are printed once (one per line, or as CSV) and stored only hashed."""
    body = {"value": value, "count": count, "expires_at": _code_expiry(expires), "note": note}
    made = run(lambda s: _codes(s).create(body, CLI_ACTOR, int(time.time())))
    batch = made.summary
    print(
        f"Created batch {batch.id}: {batch.count} code(s) of {_decimal(batch.value)}. Shown only once:",
        file=sys.stderr,
    )
    if not as_csv:
        print("\n".join(made.codes))
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["code", "value", "expires_at", "batch"])
    expires_at = _iso(batch.expires_at)
    for code in made.codes:
        writer.writerow([code, _decimal(batch.value), expires_at, batch.id])


def _iso(ts: int | None) -> str:
    return (
        "" if ts is None else datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )


@codes_app.command("list")
def codes_list(
    batch: Annotated[str | None, typer.Option(help="The codes of one batch instead of the batches.")] = None,
    status: Annotated[str | None, typer.Option(help="unused, redeemed, revoked or expired.")] = None,
) -> None:
    """Batches and how many of their codes are unused, redeemed, revoked, expired; or one batch's codes."""
    if batch is None and status is None:
        batches = run(lambda s: _codes(s).batches())
        table = Table(
            "batch",
            "value",
            "created",
            "expires",
            "count",
            "unused",
            "redeemed",
            "revoked",
            "expired",
            "note",
        )
        for b in batches:
            counts = (b.count, b.unused, b.redeemed, b.revoked, b.expired)
            table.add_row(
                b.id,
                _decimal(b.value),
                _when(b.created_at),
                _when(b.expires_at),
                *map(str, counts),
                b.note or "",
            )
        console.print(table)
        return
    codes = run(lambda s: _codes(s).codes(batch, status, 10_000))
    table = Table("id", "ends with", "batch", "value", "status", "expires", "redeemed", "by")
    for c in codes:
        table.add_row(
            c.id,
            "…" + c.hint,
            c.batch_id,
            _decimal(c.value),
            c.status,
            _when(c.expires_at),
            _when(c.redeemed_at),
            c.redeemed_by or "",
        )
    console.print(table)


@codes_app.command("revoke")
def codes_revoke(
    code: Annotated[str | None, typer.Argument(help="One code (as printed) or its id.")] = None,
    batch: Annotated[str | None, typer.Option(help="Revoke every unused code of this batch.")] = None,
) -> None:
    """Revoke one code, or the unused codes of a batch; redeemed codes stay redeemed."""
    body = {"batch": batch, "code": code}
    count = run(lambda s: _codes(s).revoke(body, CLI_ACTOR))
    console.print(f"Revoked {count} code(s).")


@app.command()
def usage(
    by: Annotated[str, typer.Option(help="Group by day, model or key.")] = "day",
    account: Annotated[str | None, typer.Option(help="One account only.")] = None,
    days: Annotated[int, typer.Option(help="How many days back.")] = 30,
) -> None:
    """Requests, tokens and cost, grouped by day, model or key."""
    rows = run(lambda s: AccountsAdmin(s.keys, s.billing).usage(by, account, days))
    table = Table(by, "requests", "input", "cached", "output", "reasoning", "cost")
    for r in rows:
        table.add_row(
            str(r[by]),
            str(r["requests"]),
            str(r["input_tokens"]),
            str(r["cached_tokens"]),
            str(r["output_tokens"]),
            str(r["reasoning_tokens"]),
            _money(r["cost"] or 0),
        )
    console.print(table)


def _money(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS_PER_USD)
    return f"{sign}{whole}.{fraction:06d}"


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """Show the model catalog."""
    if ctx.invoked_subcommand is not None:
        return
    settings = Settings()
    catalog = run(lambda s: s.catalog.models())
    if settings.engine_enabled:
        catalog.append(embedded_model(settings.engine_context, settings.engine_max_output_tokens))
    table = Table(
        "id", "series", "tier", "context", "max output", "reasoning efforts", "price in/cached/out", "uses"
    )
    for m in catalog:
        d = m.details
        prices = f"{m.prices.input}/{m.prices.cached_input}/{m.prices.output}"
        table.add_row(
            m.id,
            d.get("series", {}).get("en", ""),
            d.get("tier", {}).get("en", ""),
            str(m.context_window),
            str(m.max_output_tokens),
            ", ".join(m.reasoning_efforts) or "-",
            prices,
            d.get("uses", {}).get("en", ""),
        )
    console.print(table)
    console.print("Prices are micro-USD per 1M tokens.")


@models_app.command("set")
def models_set(
    document: Annotated[str, typer.Argument(help="The model as JSON (see /admin/models).")],
) -> None:
    """Add a model, or replace one with the same id."""
    model = audited(lambda s: s.catalog.put_model(json.loads(document)), "model.put", lambda m: m.id)
    console.print(f"Saved model {model.id}.")


@models_app.command("update")
def models_update(
    model_id: str, patch: Annotated[str, typer.Argument(help="Fields to change, as JSON.")]
) -> None:
    """Change some fields of a model (prices, limits, reasoning efforts, metadata)."""
    model = audited(
        lambda s: s.catalog.patch_model(model_id, json.loads(patch)),
        "model.update",
        model_id,
        masked(json.loads(patch)),
    )
    console.print_json(json.dumps(model_to_json(model)))


@models_app.command("remove")
def models_remove(model_id: str) -> None:
    """Remove a model from the catalog."""
    audited(lambda s: s.catalog.delete_model(model_id), "model.delete", model_id)
    console.print(f"Removed model {model_id}.")


def _models_option(value: str) -> dict[str, str]:
    """``gpt-5,gpt-5.1=gpt-5.1-2025-11-13``: catalog ids, each optionally mapped to an upstream name."""
    mapping = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        model, _, upstream = part.partition("=")
        mapping[model] = upstream or model
    return mapping


def _headers_option(values: list[str]) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (h.partition(":") for h in values)}


@channels_app.command("add")
def channels_add(
    name: Annotated[str, typer.Option(help="A unique name.")],
    base_url: Annotated[
        str, typer.Option(help="The upstream's OpenAI base URL, e.g. https://api.openai.com/v1.")
    ],
    models: Annotated[str, typer.Option(help="Comma-separated model ids; `id=upstream-name` maps a name.")],
    api_key: Annotated[list[str] | None, typer.Option(help="Upstream key; repeat to rotate several.")] = None,
    wire: Annotated[str, typer.Option(help="The API the upstream speaks: chat or responses.")] = "chat",
    priority: Annotated[int, typer.Option(help="Higher is tried first.")] = 0,
    weight: Annotated[int, typer.Option(help="Share of traffic among channels of one priority.")] = 1,
    capacity: Annotated[int | None, typer.Option(help="Most requests in flight at once.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to the first byte and between reads.")] = 600.0,
    header: Annotated[list[str] | None, typer.Option(help="Extra header 'Name: value'; repeatable.")] = None,
    max_tokens_field: Annotated[str, typer.Option(help="max_completion_tokens or max_tokens.")] = (
        "max_completion_tokens"
    ),
    disabled: Annotated[bool, typer.Option(help="Add it switched off.")] = False,
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a free connection and to open one.")
    ] = 10.0,
    write_timeout: Annotated[
        float, typer.Option(help="Seconds the upstream may take none of a request.")
    ] = 60.0,
    total_timeout: Annotated[
        float | None, typer.Option(help="Seconds for a whole exchange, to the reply's last byte.")
    ] = 3600.0,
    proxy: Annotated[
        str | None,
        typer.Option(
            help="Proxy URL: http://, https://, socks5:// or socks5h://, credentials as user:pass@ "
            "(sealed at rest, masked when shown); 'direct' ignores HTTPS_PROXY/HTTP_PROXY."
        ),
    ] = None,
    tls_ca_file: Annotated[
        str | None, typer.Option(help="PEM file of the authorities to trust instead of the system's.")
    ] = None,
    tls_cert_file: Annotated[
        str | None, typer.Option(help="PEM client certificate to show the upstream.")
    ] = None,
    tls_key_file: Annotated[
        str | None, typer.Option(help="Its private key, unless it is in the certificate file.")
    ] = None,
    tls_insecure_skip_verify: Annotated[
        bool,
        typer.Option(
            "--tls-insecure-skip-verify",
            help="UNSAFE: do not check the upstream's certificate (anyone on the path can read the traffic).",
        ),
    ] = False,
) -> None:
    """Add an upstream channel."""
    body = {
        "name": name,
        "base_url": base_url,
        "wire_api": wire,
        "api_keys": api_key or [],
        "models": _models_option(models),
        "priority": priority,
        "weight": weight,
        "capacity": capacity,
        "timeout": timeout,
        "extra_headers": _headers_option(header or []),
        "max_tokens_field": max_tokens_field,
        "enabled": not disabled,
        "connect_timeout": connect_timeout,
        "write_timeout": write_timeout,
        "total_timeout": total_timeout,
        "proxy": proxy,
        "tls_ca_file": tls_ca_file,
        "tls_cert_file": tls_cert_file,
        "tls_key_file": tls_key_file,
        "tls_insecure_skip_verify": tls_insecure_skip_verify,
    }
    channel = audited(lambda s: s.catalog.add_channel(body), "channel.add", lambda c: c.name)
    console.print(f"Added channel {channel.name} ({channel.wire_api}) serving {', '.join(channel.models)}.")
    _warn(channel)


def _warn(channel: Channel) -> None:
    for warning in channel.warnings():
        err_console.print(f"[bold red]Warning[/bold red] (channel {channel.name}): {warning}")


@channels_app.command("list")
def channels_list() -> None:
    """List channels (keys masked)."""
    channels = run(lambda s: s.catalog.channels())
    failures = run(lambda s: ProbeStore(s.db).latest_failures())
    table = Table(
        "name",
        "wire",
        "base url",
        "models",
        "priority",
        "weight",
        "capacity",
        "keys",
        "proxy",
        "enabled",
        "probe",
    )
    for c in channels:
        models = ", ".join(k if k == v else f"{k}={v}" for k, v in c.models.items())
        table.add_row(
            c.name,
            c.wire_api,
            c.base_url,
            models,
            str(c.priority),
            str(c.weight),
            str(c.capacity or "∞"),
            str(len(c.api_keys)),
            c.to_json()["proxy"] or "",
            ("yes" if c.enabled else "no") + (" (UNSAFE TLS)" if c.tls_insecure_skip_verify else ""),
            _probe_flag(failures.get(c.name)),
        )
    console.print(table)


def _probe_flag(failed: list[str] | None) -> str:
    if failed is None:
        return ""
    return "[red]FAILED: " + ", ".join(failed) + "[/red]" if failed else "ok"


@channels_app.command("update")
def channels_update(
    name: str, patch: Annotated[str, typer.Argument(help="Fields to change, as JSON.")]
) -> None:
    """Change a channel, e.g. '{"priority": 5}' or '{"enabled": false}'."""
    channel = audited(
        lambda s: s.catalog.update_channel(name, json.loads(patch)),
        "channel.update",
        name,
        masked(json.loads(patch)),
    )
    console.print_json(json.dumps(channel.to_json()))
    _warn(channel)


@channels_app.command("remove")
def channels_remove(name: str) -> None:
    """Remove a channel."""
    audited(lambda s: s.catalog.remove_channel(name), "channel.remove", name)
    console.print(f"Removed channel {name}.")


@channels_app.command("test")
def channels_test(name: str, model: Annotated[str | None, typer.Option(help="Model to ask.")] = None) -> None:
    """Send one small real request through a channel and report its latency."""

    async def work(s: Stores) -> dict[str, Any]:
        channel = await s.catalog.channel(name)
        client = upstream_client(s.settings)
        try:
            return await try_channel(channel, HttpBackend(channel, client), model)
        finally:
            await client.close()

    result = run(work)
    console.print_json(json.dumps(result))
    if not result["ok"]:
        raise typer.Exit(1)


async def _probe_targets(
    s: Stores, client: Any, channel: str | None, model: str | None, customer: Channel | None
) -> list[Target]:
    """Customer mode: the one endpoint. Else every enabled channel (or the one named) and each model it
    serves (or the one named), described by the catalog (efforts, prices)."""
    catalog = {m.id: m for m in await s.catalog.models()}
    channels = [customer] if customer else [c for c in await s.catalog.channels() if c.enabled]
    targets = []
    for c in channels:
        if channel is not None and c.name != channel:
            continue
        for model_id in c.models:
            if model is None or model_id == model:
                info = catalog.get(model_id) or ModelInfo(model_id, 1, 1)
                targets.append(Target(c, HttpBackend(c, client), info))
    if not targets:
        raise AicyError("No channel serves that model." if model else "No channel to probe.")
    return targets


def _print_run(done: ProbeRun) -> None:
    info = done.info
    table = Table(
        "prompt",
        "effort",
        "latency ms",
        "ttft ms",
        "input",
        "cached",
        "output",
        "reasoning",
        "cost",
        "status",
        title=f"{info.channel} / {info.model} ({info.upstream_model}), run {info.run_id}",
    )
    for r in done.results:
        cells = (r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens)
        table.add_row(
            r.prompt_id,
            r.effort or "",
            str(r.latency_ms),
            str(r.ttft_ms or ""),
            *("?" if v is None else str(v) for v in cells),
            _money(r.cost),
            r.status + (f" ({r.reason})" if r.reason else ""),
        )
    console.print(table)
    _print_checks([c.to_json() for c in done.checks])


_VERDICT_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def _print_checks(checks: list[dict[str, Any]]) -> None:
    table = (
        Table("channel", "model", "check", "verdict", "reason")
        if "channel" in (checks or [{}])[0]
        else Table("check", "verdict", "reason")
    )
    for c in checks:
        verdict = f"[{_VERDICT_STYLE[c['verdict']]}]{c['verdict']}[/]"
        head = [c["channel"], c["model"]] if "channel" in c else []
        table.add_row(*head, c["name"], verdict, c["reason"])
    console.print(table)
    for c in checks:
        if c["verdict"] == "fail":
            console.print(f"[bold red]{c['name']} failed[/]: {c['reason']}")
            console.print_json(json.dumps(c["evidence"]))


@probe_app.command("run")
def probe_run(
    suite: Annotated[Path | None, typer.Option(help="A suite's TOML file (default: aicy's own).")] = None,
    model: Annotated[str | None, typer.Option(help="Probe only this model.")] = None,
    channel: Annotated[str | None, typer.Option(help="Probe only this channel.")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Customer mode: any OpenAI-compatible base URL.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="Customer mode: the key for --base-url.")] = None,
    wire_api: Annotated[
        Literal["chat", "responses"], typer.Option(help="Customer mode: the API to call.")
    ] = "chat",
    efforts: Annotated[
        str | None, typer.Option(help="Customer mode: efforts to try, e.g. low,medium,high.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each check as JSON.")] = False,
) -> None:
    """Ask the suite now through aicy's channels, or any endpoint (customer mode); exit 1 if a check fails."""
    chosen = load_suite(suite)
    customer = None
    if base_url is not None:
        if not model or not api_key:
            raise typer.BadParameter("customer mode needs --model and --api-key with --base-url")
        customer = Channel(base_url, base_url, wire_api, api_keys=(api_key,), models={model: model})

    async def work(s: Stores) -> list[ProbeRun]:
        client = upstream_client(s.settings)
        store = ProbeStore(s.db)
        try:
            targets = await _probe_targets(s, client, channel, model, customer)
            if customer is not None and efforts is not None:
                wanted = tuple(e.strip() for e in efforts.split(",") if e.strip())
                targets = [Target(t.channel, t.backend, _with_efforts(t.model, wanted)) for t in targets]
            return [await probe(t, chosen, store) for t in targets]
        finally:
            await client.close()

    runs = run(work)
    if as_json:
        done_json = [{**dataclasses.asdict(r.info), "checks": [c.to_json() for c in r.checks]} for r in runs]
        print(json.dumps(done_json, ensure_ascii=False))
    else:
        for done in runs:
            _print_run(done)
    if any(done.failed for done in runs):
        raise typer.Exit(1)


def _with_efforts(model: ModelInfo, efforts: tuple[str, ...]) -> ModelInfo:
    return dataclasses.replace(model, reasoning_efforts=efforts, default_reasoning_effort=None)


@probe_app.command("report")
def probe_report(
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    channel: Annotated[
        str | None, typer.Option(help="Only this channel (or customer-mode base URL).")
    ] = None,
    days: Annotated[float, typer.Option(help="How far back to look.")] = 7,
    plot: Annotated[Path, typer.Option(help="Where to write the PNG of each figure over time.")] = Path(
        "probe-report.png"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the latest checks as JSON.")] = False,
) -> None:
    """Figures per run, the latest checks of each channel and model, a PNG; exit 1 when a check fails."""

    async def work(s: Stores) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        store = ProbeStore(s.db)
        results = await store.results(channel=channel, model=model, days=days)
        return results, await store.checks(channel=channel, model=model, days=days)

    results, checks = run(work)
    latest = latest_checks(checks)
    shown = [
        {k: c[k] for k in ("channel", "model", "run_id", "name", "verdict", "reason", "evidence")}
        for c in latest
    ]
    runs = run_figures(results)
    if as_json:
        print(json.dumps(shown, ensure_ascii=False))
    else:
        table = Table(
            "time", "channel", "model", "latency ms", "ttft ms", "input", "output", "reasoning", "cost"
        )
        for f in runs:
            figures = [f.figures[k] for k in ("latency_ms", "ttft_ms", "input_tokens", "output_tokens")]
            table.add_row(
                _when(f.created_at),
                f.channel,
                f.model,
                *("" if v is None else f"{v:g}" for v in figures),
                "" if f.figures["reasoning_tokens"] is None else f"{f.figures['reasoning_tokens']:g}",
                _money(int(f.figures["cost"] or 0)),
            )
        console.print(table)
        _print_checks(shown)
    if runs:
        try:
            err_console.print(f"Wrote {write_plot(runs, plot)}")
        except PlotUnavailable as exc:
            err_console.print(f"[yellow]No plot[/yellow]: {exc}")
    if any(c["verdict"] == "fail" for c in latest):
        raise typer.Exit(1)


def main() -> None:
    app()
