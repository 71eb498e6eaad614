"""Numbered, named migrations, recorded in ``schema_migrations``; each runs once, in order."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, inspect, select, text

from aicy.storage import schema

Migration = tuple[int, str, Callable[[Connection], None]]


def _initial(conn: Connection) -> None:
    for table in (schema.accounts, schema.api_keys, schema.responses):
        table.create(conn, checkfirst=True)


def _catalog_and_channels(conn: Connection) -> None:
    for table in (schema.meta, schema.models, schema.channels):
        table.create(conn, checkfirst=True)
    _add_missing_columns(conn, "responses", {"channel": "VARCHAR(100)"})


def _add_missing_columns(conn: Connection, table: str, columns: dict[str, str]) -> None:
    """Migration 1 builds tables from today's schema, so a fresh database already has these columns."""
    present = {c["name"] for c in inspect(conn).get_columns(table)}
    for name, ddl in columns.items():
        if name not in present:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))


def _billing(conn: Connection) -> None:
    _add_missing_columns(
        conn, "accounts", {"balance": "BIGINT NOT NULL DEFAULT 0", "reserved": "BIGINT NOT NULL DEFAULT 0"}
    )
    _add_missing_columns(
        conn,
        "api_keys",
        {
            "expires_at": "BIGINT",
            "models": "TEXT",
            "ips": "TEXT",
            "spend_limit": "BIGINT",
            "spend_limit_daily": "BIGINT",
            "spend_limit_monthly": "BIGINT",
            "rpm": "INTEGER",
            "tpm": "INTEGER",
            "enabled": "BOOLEAN NOT NULL DEFAULT TRUE",
            "shared": "BOOLEAN NOT NULL DEFAULT FALSE",
            "suspended_at": "BIGINT",
            "suspended_reason": "TEXT",
        },
    )
    for table in (schema.key_spend, schema.reservations, schema.ledger, schema.usage_log):
        table.create(conn, checkfirst=True)


def _idempotency_keys(conn: Connection) -> None:
    schema.idempotency_keys.create(conn, checkfirst=True)


def _response_upstream_ids(conn: Connection) -> None:
    _add_missing_columns(conn, "responses", {"upstream_id": "VARCHAR(200)"})


def _usage_omitted_tools(conn: Connection) -> None:
    _add_missing_columns(conn, "usage_log", {"omitted_tools": "VARCHAR(500)"})


def _console_logins(conn: Connection) -> None:
    _add_missing_columns(
        conn,
        "accounts",
        {"email": "VARCHAR(320)", "password_hash": "TEXT", "session_epoch": "INTEGER NOT NULL DEFAULT 0"},
    )
    if not _email_unique(conn):
        conn.execute(text("CREATE UNIQUE INDEX ix_accounts_email ON accounts (email)"))


def _email_unique(conn: Connection) -> bool:
    """A new database has the column's UNIQUE from today's schema (migration 1); an old one needs an index."""
    uniques = inspect(conn).get_unique_constraints("accounts")
    indexes = inspect(conn).get_indexes("accounts")
    return any(u["column_names"] == ["email"] for u in uniques) or any(
        i["column_names"] == ["email"] and i["unique"] for i in indexes
    )


def _topup_codes_and_audit_log(conn: Connection) -> None:
    for table in (schema.topup_codes, schema.audit_log):
        table.create(conn, checkfirst=True)


def _probes(conn: Connection) -> None:
    for table in (schema.probe_results, schema.probe_checks):
        table.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    (1, "accounts, api keys, stored responses", _initial),
    (2, "model catalog, channels, the channel that served a stored response", _catalog_and_channels),
    (3, "balances, key limits, reservations, ledger, usage log", _billing),
    (4, "idempotency keys of money-moving admin calls", _idempotency_keys),
    (5, "the upstream's own id beside a stored response's", _response_upstream_ids),
    (6, "the hosted tools a request's backend was not offered, in the usage log", _usage_omitted_tools),
    (7, "top-up codes, the audit log of operators' changes", _topup_codes_and_audit_log),
    (8, "console sign-in: e-mail, password hash, session epoch", _console_logins),
    (9, "probe results and their checks", _probes),
)


def apply(conn: Connection) -> list[int]:
    """Apply every migration not yet recorded; returns the versions applied."""
    schema.schema_migrations.create(conn, checkfirst=True)
    done = set(conn.execute(select(schema.schema_migrations.c.version)).scalars())
    applied = []
    for version, name, step in MIGRATIONS:
        if version in done:
            continue
        step(conn)
        conn.execute(
            schema.schema_migrations.insert().values(version=version, name=name, applied_at=int(time.time()))
        )
        applied.append(version)
    return applied
