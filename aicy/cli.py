"""The ``aicy`` command: serve, keys, models, channels."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.bootstrap import ADMIN_ACCOUNT, first_start, how_to_call
from aicy.errors import AicyError
from aicy.routing.catalog import embedded_model
from aicy.routing.catalog_json import model_to_json
from aicy.serving.catalog_admin import CatalogAdmin, try_channel
from aicy.settings import Settings
from aicy.storage.catalog import CatalogStore
from aicy.storage.crypto import SecretBox, load_or_create_secret
from aicy.storage.db import create_engine, migrate
from aicy.storage.keys import KeyStore

T = TypeVar("T")

app = typer.Typer(help="aicy: a self-hosted, OpenAI-compatible LLM API platform.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
channels_app = typer.Typer(help="Upstream channels: add, list, update, remove, test.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog (no subcommand: show it).")
app.add_typer(keys_app, name="keys")
app.add_typer(channels_app, name="channels")
app.add_typer(models_app, name="models")
# Piped output (scripts, tests) gets wide tables instead of Rich's 80-column wrapping.
console = Console(width=None if sys.stdout.isatty() else 200)


@dataclass(slots=True)
class Stores:
    settings: Settings
    db: AsyncEngine
    keys: KeyStore
    catalog: CatalogAdmin


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
            return await work(Stores(settings, db, KeyStore(db), catalog))
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


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key.")] = "key",
    account: Annotated[str, typer.Option(help="Account that owns the key (created if new).")] = "default",
    admin: Annotated[bool, typer.Option(help="An admin key (can manage aicy).")] = False,
) -> None:
    """Create a key; the secret is printed once, alone on the last line."""
    account_name = ADMIN_ACCOUNT if admin else account

    async def work(s: Stores) -> tuple[str, Any]:
        account_id = await s.keys.ensure_account(account_name, is_admin=admin)
        return await s.keys.create_key(account_id, name, "admin" if admin else "customer")

    key_id, key = run(work)
    print(
        f"Created key {key_id} ({key.prefix}…) for account '{account_name}'. It is shown only once:",
        file=sys.stderr,
    )
    print(key.secret)


@keys_app.command("list")
def keys_list() -> None:
    """List keys by their visible prefix."""
    records = run(lambda s: s.keys.list_keys())
    table = Table("id", "prefix", "name", "account", "role", "created", "revoked")
    for r in records:
        table.add_row(
            r.id, r.prefix + "…", r.name, r.account_name, r.role, _when(r.created_at), _when(r.revoked_at)
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id or visible prefix.")]) -> None:
    """Revoke a key; it is refused from the next request on."""
    count = run(lambda s: s.keys.revoke(key))
    if not count:
        console.print(f"No active key matches '{key}'.")
        raise typer.Exit(1)
    console.print(f"Revoked {count} key(s).")


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
    }
    channel = run(lambda s: s.catalog.add_channel(body))
    console.print(f"Added channel {channel.name} ({channel.wire_api}) serving {', '.join(channel.models)}.")


@channels_app.command("list")
def channels_list() -> None:
    """List channels (keys masked)."""
    channels = run(lambda s: s.catalog.channels())
    table = Table("name", "wire", "base url", "models", "priority", "weight", "capacity", "keys", "enabled")
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
            "yes" if c.enabled else "no",
        )
    console.print(table)


@channels_app.command("update")
def channels_update(
    name: str, patch: Annotated[str, typer.Argument(help="Fields to change, as JSON.")]
) -> None:
    """Change a channel, e.g. '{"priority": 5}' or '{"enabled": false}'."""
    channel = run(lambda s: s.catalog.update_channel(name, json.loads(patch)))
    console.print_json(json.dumps(channel.to_json()))


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
        async with httpx.AsyncClient() as client:
            return await try_channel(channel, client, model)

    result = run(work)
    console.print_json(json.dumps(result))
    if not result["ok"]:
        raise typer.Exit(1)


def main() -> None:
    app()
