"""The ``aicy`` command: serve, keys, models, channels."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.accounting.money import MICROS_PER_USD
from aicy.bootstrap import ADMIN_ACCOUNT, first_start, how_to_call, upstream_client
from aicy.domain.channels import Channel
from aicy.domain.models import embedded_model
from aicy.errors import AicyError
from aicy.routing.catalog_json import model_to_json
from aicy.serving.accounts_admin import AccountsAdmin, key_json
from aicy.serving.catalog_admin import CatalogAdmin, try_channel
from aicy.serving.console import set_login
from aicy.settings import Settings
from aicy.storage.billing import BillingStore
from aicy.storage.catalog import CatalogStore
from aicy.storage.crypto import SecretBox, load_or_create_secret
from aicy.storage.db import create_engine, migrate
from aicy.storage.keys import KeyStore
from aicy.storage.logins import LoginStore
from aicy.storage.tx import Transactor
from aicy.upstream.openai_http import HttpBackend

T = TypeVar("T")

app = typer.Typer(help="aicy: a self-hosted, OpenAI-compatible LLM API platform.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
channels_app = typer.Typer(help="Upstream channels: add, list, update, remove, test.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog (no subcommand: show it).")
accounts_app = typer.Typer(help="Accounts, balances, top-ups and the ledger.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(channels_app, name="channels")
app.add_typer(models_app, name="models")
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
    record, secret = run(lambda s: AccountsAdmin(s.keys, s.billing).create_key(body))
    print(
        f"Created key {record.id} ({record.prefix}…) for account '{record.account_name}'. "
        "It is shown only once:",
        file=sys.stderr,
    )
    print(secret)


@keys_app.command("update")
def keys_update(key: str, patch: Annotated[str, typer.Argument(help="Fields to change, as JSON.")]) -> None:
    """Change a key's limits, e.g. '{"rpm": 60}', '{"enabled": false}' or '{"unsuspend": true}'."""
    record = run(lambda s: AccountsAdmin(s.keys, s.billing).update_key(key, json.loads(patch)))
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
    count = run(lambda s: s.keys.revoke(key))
    if not count:
        console.print(f"No active key matches '{key}'.")
        raise typer.Exit(1)
    console.print(f"Revoked {count} key(s).")


@accounts_app.command("create")
def accounts_create(name: str) -> None:
    """Create an account (balance zero)."""
    account = run(lambda s: AccountsAdmin(s.keys, s.billing).create_account({"name": name}))
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
    record = run(lambda s: set_login(s.keys, LoginStore(s.db, s.keys.tx), account, password, email))
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
    done = run(lambda s: AccountsAdmin(s.keys, s.billing).credit(account, body, reason, idempotency_key))
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
    model = run(lambda s: s.catalog.put_model(json.loads(document)))
    console.print(f"Saved model {model.id}.")


@models_app.command("update")
def models_update(
    model_id: str, patch: Annotated[str, typer.Argument(help="Fields to change, as JSON.")]
) -> None:
    """Change some fields of a model (prices, limits, reasoning efforts, metadata)."""
    model = run(lambda s: s.catalog.patch_model(model_id, json.loads(patch)))
    console.print_json(json.dumps(model_to_json(model)))


@models_app.command("remove")
def models_remove(model_id: str) -> None:
    """Remove a model from the catalog."""
    run(lambda s: s.catalog.delete_model(model_id))
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
    channel = run(lambda s: s.catalog.add_channel(body))
    console.print(f"Added channel {channel.name} ({channel.wire_api}) serving {', '.join(channel.models)}.")
    _warn(channel)


def _warn(channel: Channel) -> None:
    for warning in channel.warnings():
        err_console.print(f"[bold red]Warning[/bold red] (channel {channel.name}): {warning}")


@channels_app.command("list")
def channels_list() -> None:
    """List channels (keys masked)."""
    channels = run(lambda s: s.catalog.channels())
    table = Table(
        "name", "wire", "base url", "models", "priority", "weight", "capacity", "keys", "proxy", "enabled"
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
        )
    console.print(table)


@channels_app.command("update")
def channels_update(
    name: str, patch: Annotated[str, typer.Argument(help="Fields to change, as JSON.")]
) -> None:
    """Change a channel, e.g. '{"priority": 5}' or '{"enabled": false}'."""
    channel = run(lambda s: s.catalog.update_channel(name, json.loads(patch)))
    console.print_json(json.dumps(channel.to_json()))
    _warn(channel)


@channels_app.command("remove")
def channels_remove(name: str) -> None:
    """Remove a channel."""
    run(lambda s: s.catalog.remove_channel(name))
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


def main() -> None:
    app()
