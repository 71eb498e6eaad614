"""Numbered, named migrations, recorded in ``schema_migrations``; each runs once, in order."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, select

from aicy.storage import schema

Migration = tuple[int, str, Callable[[Connection], None]]


def _initial(conn: Connection) -> None:
    for table in (schema.accounts, schema.api_keys, schema.responses):
        table.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = ((1, "accounts, api keys, stored responses", _initial),)


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
