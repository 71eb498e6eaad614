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
    # Migration 1 builds tables from today's schema, so a fresh database already has the column.
    if "channel" not in {c["name"] for c in inspect(conn).get_columns("responses")}:
        conn.execute(text("ALTER TABLE responses ADD COLUMN channel VARCHAR(100)"))


MIGRATIONS: tuple[Migration, ...] = (
    (1, "accounts, api keys, stored responses", _initial),
    (2, "model catalog, channels, the channel that served a stored response", _catalog_and_channels),
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
