"""Top-up codes in the database: batches made by operators, each code redeemed at most once.

Codes are stored as SHA-256 hashes (``domain.codes``), never in clear. Every write runs through the
``Transactor`` (``storage.tx``) like the other money-moving writes. A redemption is one transaction that
claims the code (``UPDATE … WHERE redeemed_at IS NULL AND revoked_at IS NULL AND not expired``: of two
concurrent redeems, exactly one matches the row), credits the account and writes the ``redeem`` ledger
entry, so the balance stays the sum of the ledger and no code is ever credited twice. Operators' batch
creations and revocations write their audit log entry (``storage.audit``) in the same transaction.
The listings read through SQLAlchemy Core, like the other admin reports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from aicy.storage.audit import Change, record
from aicy.storage.billing import MAX_BALANCE, BalanceTooLarge
from aicy.storage.keys import ACCOUNT_COLUMNS, AccountRecord, account_record
from aicy.storage.schema import topup_codes
from aicy.storage.tx import Transactor, Tx

Status = Literal["unused", "redeemed", "revoked", "expired"]
STATUSES: tuple[Status, ...] = ("unused", "redeemed", "revoked", "expired")
Refusal = Literal["not_found", "redeemed", "revoked", "expired"]
REDEEM_REASON = "redeem"  # the ledger entry's reason
_ROWS_PER_INSERT = 100  # 8 parameters a row; larger statements held the loop longer on PostgreSQL


class CodeRefused(Exception):
    """The code cannot be redeemed (or revoked): unknown, already redeemed, revoked or expired."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason)
        self.reason: Refusal = reason


@dataclass(frozen=True, slots=True)
class NewCode:
    id: str
    code_hash: str
    hint: str


@dataclass(frozen=True, slots=True)
class BatchSpec:
    id: str
    value: int
    expires_at: int | None
    note: str | None


@dataclass(frozen=True, slots=True)
class BatchSummary:
    id: str
    value: int
    created_at: int
    expires_at: int | None
    note: str | None
    count: int
    unused: int
    redeemed: int
    revoked: int
    expired: int


@dataclass(frozen=True, slots=True)
class CodeRecord:
    id: str
    hint: str
    batch_id: str
    value: int
    created_at: int
    expires_at: int | None
    redeemed_at: int | None
    redeemed_by: str | None
    revoked_at: int | None
    note: str | None
    status: Status


@dataclass(frozen=True, slots=True)
class Redeemed:
    code_id: str
    batch_id: str
    value: int
    account: AccountRecord  # as the credit left it


_COLUMNS = ("id", "code_hash", "hint", "batch_id", "value", "created_at", "expires_at", "note")
_CLAIM = (
    "UPDATE topup_codes SET redeemed_at = :now, redeemed_by = :account WHERE code_hash = :hash "
    "AND redeemed_at IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > :now)"
)
_FIND = (
    "SELECT id, batch_id, value, redeemed_at, revoked_at, expires_at FROM topup_codes WHERE code_hash = :hash"
)
# The same credit and ledger entry as ``storage.billing``'s top-ups, with the code as the entry's reference.
_CREDIT = "UPDATE accounts SET balance = balance + :amount WHERE id = :account AND balance + :amount <= :cap"
_LEDGER = (
    "INSERT INTO ledger (account_id, amount, reason, reference, note, created_at) "
    "VALUES (:account, :amount, :reason, :reference, :note, :now)"
)
_ACCOUNT = "SELECT {} FROM accounts WHERE id = :account".format(", ".join(ACCOUNT_COLUMNS))
_UNUSED = "redeemed_at IS NULL AND revoked_at IS NULL"
_REVOKE_BATCH = f"UPDATE topup_codes SET revoked_at = :now WHERE batch_id = :batch AND {_UNUSED}"
_REVOKE_CODE = (
    f"UPDATE topup_codes SET revoked_at = :now WHERE (id = :match OR code_hash = :match) AND {_UNUSED}"
)
_CODE_STATE = "SELECT id, batch_id, redeemed_at FROM topup_codes WHERE id = :match OR code_hash = :match"
_BATCH_EXISTS = "SELECT 1 FROM topup_codes WHERE batch_id = :batch LIMIT 1"


def _insert_sql(rows: int) -> str:
    values = ", ".join("(" + ", ".join(f":{c}_{i}" for c in _COLUMNS) + ")" for i in range(rows))
    return f"INSERT INTO topup_codes ({', '.join(_COLUMNS)}) VALUES {values}"


def _create(tx: Tx, batch: BatchSpec, codes: Sequence[NewCode], now: int, change: Change) -> None:
    for start in range(0, len(codes), _ROWS_PER_INSERT):
        chunk = codes[start : start + _ROWS_PER_INSERT]
        params: dict[str, Any] = {}
        for i, code in enumerate(chunk):
            row = (
                code.id,
                code.code_hash,
                code.hint,
                batch.id,
                batch.value,
                now,
                batch.expires_at,
                batch.note,
            )
            params.update({f"{c}_{i}": v for c, v in zip(_COLUMNS, row, strict=True)})
        tx.execute(_insert_sql(len(chunk)), params)
    record(tx, change)


def _refusal(tx: Tx, code_hash: str, now: int) -> Refusal:
    row = tx.execute(_FIND, {"hash": code_hash}).first()
    if row is None:
        return "not_found"
    if row[3] is not None:
        return "redeemed"
    if row[4] is not None:
        return "revoked"
    return "expired" if row[5] is not None and int(row[5]) <= now else "not_found"


def redeem_in(tx: Tx, code_hash: str, account_id: str, now: int) -> Redeemed:
    """Redeem inside the caller's transaction (a refusal raises, rolling all of it back)."""
    claim = {"now": now, "account": account_id, "hash": code_hash}
    if tx.execute(_CLAIM, claim).rowcount != 1:
        raise CodeRefused(_refusal(tx, code_hash, now))
    found = tx.execute(_FIND, {"hash": code_hash}).first()
    assert found is not None
    code_id, batch_id, value = str(found[0]), str(found[1]), int(found[2])
    if tx.execute(_CREDIT, {"amount": value, "account": account_id, "cap": MAX_BALANCE}).rowcount != 1:
        raise BalanceTooLarge()  # raising rolls the claim back: the code stays unused
    entry = {
        "account": account_id,
        "amount": value,
        "reason": REDEEM_REASON,
        "reference": code_id,
        "note": f"top-up code batch {batch_id}",
        "now": now,
    }
    tx.execute(_LEDGER, entry)
    row = tx.execute(_ACCOUNT, {"account": account_id}).first()
    assert row is not None
    account = account_record(dict(zip(ACCOUNT_COLUMNS, row, strict=True)))
    return Redeemed(code_id, batch_id, value, account)


def _revoke_batch(tx: Tx, batch_id: str, now: int, change: Change) -> int:
    if tx.execute(_BATCH_EXISTS, {"batch": batch_id}).first() is None:
        raise LookupError(batch_id)
    count = tx.execute(_REVOKE_BATCH, {"now": now, "batch": batch_id}).rowcount
    if count:
        record(tx, replace(change, details={**change.details, "revoked": count}))
    return count


def _revoke_code(tx: Tx, match: str, now: int, change: Change) -> int:
    """1 when revoked now, 0 when it was revoked before; a redeemed code cannot be revoked. The audit entry
    names the code by its id (never by its text)."""
    revoked = tx.execute(_REVOKE_CODE, {"now": now, "match": match}).rowcount
    row = tx.execute(_CODE_STATE, {"match": match}).first()
    if row is None:
        raise CodeRefused("not_found")
    if revoked == 1:
        record(tx, replace(change, target=str(row[0]), details={**change.details, "batch": row[1]}))
        return 1
    if row[2] is not None:
        raise CodeRefused("redeemed")
    return 0


def _status_of(now: int) -> ColumnElement[str]:
    c = topup_codes.c
    return case(
        (c.redeemed_at.is_not(None), "redeemed"),
        (c.revoked_at.is_not(None), "revoked"),
        (and_(c.expires_at.is_not(None), c.expires_at <= now), "expired"),
        else_="unused",
    )


def _code_record(r: Row[Any]) -> CodeRecord:
    return CodeRecord(
        r.id,
        r.hint,
        r.batch_id,
        int(r.value),
        int(r.created_at),
        r.expires_at,
        r.redeemed_at,
        r.redeemed_by,
        r.revoked_at,
        r.note,
        r.status,
    )


def _count(status: ColumnElement[str], name: Status) -> Any:
    return func.sum(case((status == name, 1), else_=0)).label(name)


class TopupCodeStore:
    def __init__(self, engine: AsyncEngine, transactor: Transactor | None = None) -> None:
        self.engine = engine
        self.tx = transactor or Transactor(engine)

    async def create_batch(self, batch: BatchSpec, codes: Sequence[NewCode], change: Change) -> int:
        """Store the codes of a new batch (their hashes) and the audit entry; returns the creation time."""
        now = int(time.time())
        await self.tx.run(lambda tx: _create(tx, batch, codes, now, change), bulky=len(codes) > 100)
        return now

    async def redeem(self, code_hash: str, account_id: str) -> Redeemed:
        """Credit the code's value to the account, once: ``CodeRefused`` says why not, ``BalanceTooLarge``
        leaves the code unused."""
        now = int(time.time())
        return await self.tx.run(lambda tx: redeem_in(tx, code_hash, account_id, now), finish=True)

    async def revoke_batch(self, batch_id: str, change: Change) -> int:
        """Revoke a batch's unused codes (expired ones included); how many. ``LookupError``: no such batch."""
        now = int(time.time())
        return await self.tx.run(lambda tx: _revoke_batch(tx, batch_id, now, change))

    async def revoke_code(self, id_or_hash: str, change: Change) -> int:
        now = int(time.time())
        return await self.tx.run(lambda tx: _revoke_code(tx, id_or_hash, now, change))

    async def batches(self, limit: int = 1000) -> list[BatchSummary]:
        """Batches, newest first, with how many of their codes are in each state."""
        c = topup_codes.c
        status = _status_of(int(time.time()))
        query = (
            select(
                c.batch_id,
                func.min(c.value).label("value"),
                func.min(c.created_at).label("created_at"),
                func.min(c.expires_at).label("expires_at"),
                func.min(c.note).label("note"),
                func.count().label("total"),
                *(_count(status, name) for name in STATUSES),
            )
            .group_by(c.batch_id)
            .order_by(func.min(c.created_at).desc(), c.batch_id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            BatchSummary(
                r.batch_id,
                int(r.value),
                int(r.created_at),
                None if r.expires_at is None else int(r.expires_at),
                r.note,
                int(r.total),
                *(int(getattr(r, name) or 0) for name in STATUSES),
            )
            for r in rows
        ]

    async def codes(
        self, batch_id: str | None = None, status: Status | None = None, limit: int = 1000
    ) -> list[CodeRecord]:
        c = topup_codes.c
        state = _status_of(int(time.time()))
        query = select(topup_codes, state.label("status"))
        if batch_id is not None:
            query = query.where(c.batch_id == batch_id)
        if status is not None:
            query = query.where(state == status)
        query = query.order_by(c.created_at.desc(), c.id).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_code_record(r) for r in rows]
