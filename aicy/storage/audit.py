"""The audit log: who changed what, and when, written in the same transaction as the change itself.

``actor`` is the admin key's id for the admin API, ``"cli"`` for the command line. So far the top-up code
operations write here (``storage.codes``); other operators' changes are meant to join them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.schema import audit_log
from aicy.storage.tx import Tx

CLI_ACTOR = "cli"
SECRET_FIELDS = frozenset({"api_keys", "api_key", "proxy", "extra_headers", "password", "tls_key_file"})


def masked(body: Any) -> dict[str, Any]:
    """What a request asked to change, as the audit log keeps it: fields that hold secrets are masked."""
    if not isinstance(body, dict):
        return {}
    return {k: ("***" if k in SECRET_FIELDS and v else v) for k, v in body.items()}


_RECORD = (
    "INSERT INTO audit_log (created_at, actor, action, target, details) "
    "VALUES (:now, :actor, :action, :target, :details)"
)


@dataclass(frozen=True, slots=True)
class Change:
    """One operator's change, as the audit log keeps it."""

    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


def record(tx: Tx, change: Change) -> None:
    """Write ``change`` inside the transaction that makes it: both are kept, or neither."""
    tx.execute(
        _RECORD,
        {
            "now": int(time.time()),
            "actor": change.actor,
            "action": change.action,
            "target": change.target,
            "details": orjson.dumps(change.details).decode(),
        },
    )


async def audit_entries(
    engine: AsyncEngine, limit: int = 100, action: str | None = None
) -> list[dict[str, Any]]:
    """The latest entries, newest first, with ``details`` parsed back into JSON."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "id": int(r.id),
            "created_at": int(r.created_at),
            "actor": r.actor,
            "action": r.action,
            "target": r.target,
            "details": orjson.loads(r.details) if r.details else None,
        }
        for r in rows
    ]
