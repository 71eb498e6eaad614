"""The ``aicy`` command: serve, keys, models."""

from __future__ import annotations

import asyncio
import datetime
import logging
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aicy.bootstrap import ADMIN_ACCOUNT, first_start, how_to_call
from aicy.routing.catalog import embedded_model
from aicy.settings import Settings
from aicy.storage.db import create_engine, migrate
from aicy.storage.keys import KeyStore

app = typer.Typer(help="aicy: a self-hosted, OpenAI-compatible LLM API platform.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
# Piped output (scripts, tests) gets wide tables instead of Rich's 80-column wrapping.
console = Console(width=None if sys.stdout.isatty() else 200)


def _keys(settings: Settings) -> tuple[KeyStore, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    db = create_engine(settings.resolved_database_url)
    loop.run_until_complete(migrate(db))
    return KeyStore(db), loop


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
    store, loop = _keys(Settings())
    account_name = ADMIN_ACCOUNT if admin else account
    account_id = loop.run_until_complete(store.ensure_account(account_name, is_admin=admin))
    key_id, key = loop.run_until_complete(
        store.create_key(account_id, name, "admin" if admin else "customer")
    )
    loop.run_until_complete(store.engine.dispose())
    print(
        f"Created key {key_id} ({key.prefix}…) for account '{account_name}'. It is shown only once:",
        file=sys.stderr,
    )
    print(key.secret)


@keys_app.command("list")
def keys_list() -> None:
    """List keys by their visible prefix."""
    store, loop = _keys(Settings())
    records = loop.run_until_complete(store.list_keys())
    loop.run_until_complete(store.engine.dispose())
    table = Table("id", "prefix", "name", "account", "role", "created", "revoked")
    for r in records:
        table.add_row(
            r.id, r.prefix + "…", r.name, r.account_name, r.role, _when(r.created_at), _when(r.revoked_at)
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id or visible prefix.")]) -> None:
    """Revoke a key; it is refused from the next request on."""
    store, loop = _keys(Settings())
    count = loop.run_until_complete(store.revoke(key))
    loop.run_until_complete(store.engine.dispose())
    if not count:
        console.print(f"No active key matches '{key}'.")
        raise typer.Exit(1)
    console.print(f"Revoked {count} key(s).")


@app.command()
def models() -> None:
    """Show the model catalog."""
    settings = Settings()
    table = Table("id", "series", "tier", "context", "max output", "reasoning efforts", "uses")
    catalog = (
        [embedded_model(settings.engine_context, settings.engine_max_output_tokens)]
        if settings.engine_enabled
        else []
    )
    for m in catalog:
        table.add_row(
            m.id,
            m.details["series"]["en"],
            m.details["tier"]["en"],
            str(m.context_window),
            str(m.max_output_tokens),
            ", ".join(m.reasoning_efforts) or "-",
            m.details["uses"]["en"],
        )
    console.print(table)


def main() -> None:
    app()
