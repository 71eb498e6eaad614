"""Balances, reservations, the ledger, key spend and the usage log: every write that moves money.

Every write here, and every read a customer's request makes (balances, the cost of a period), runs through
the ``Transactor`` (``storage.tx``) as plain SQL: one way in, so the rows money lives in are only ever
locked one way. The reports only the admin API and the CLI read (``usage_lines``, ``usage_report``,
``ledger_entries``) stay SQLAlchemy Core: they write nothing and lock nothing, and their queries change
shape with their filters and grouping, which Core composes and plain SQL strings would not.

Invariants kept here (and checked by the tests): an account's ``balance`` equals the sum of its ledger
entries; ``reserved`` equals the sum of its open reservations; ``balance - reserved`` never goes below
zero through a reservation; a reservation is settled or released exactly once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.keys import ACCOUNT_COLUMNS, AccountRecord, account_record
from aicy.storage.schema import ledger, usage_log
from aicy.storage.tx import Transactor, Tx


class NotEnoughFunds(Exception):
    """The account's available balance, or a key's spend limit for ``period``, cannot cover a reservation."""

    def __init__(self, period: str | None = None) -> None:
        super().__init__(period or "account")
        self.period = period


class BalanceTooLarge(Exception):
    """A credit would take a balance above ``MAX_BALANCE``."""


class IdempotencyKeyReused(Exception):
    """An idempotency key seen before, with a request that asked for something else."""


MAX_BALANCE = 10**18
"""No balance goes above this (in micro-units): far above any real one, and far enough below the 64-bit
limit (9.2e18) that the arithmetic on it never overflows (SQLite would turn it into a float)."""


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An ``Idempotency-Key`` and the fingerprint of what its request asks for."""

    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Credited:
    account: AccountRecord  # as the credit left it (for a replay: as the first call left it)
    replayed: bool


@dataclass(frozen=True, slots=True)
class SpendLimit:
    period: str  # "total", "d:2026-11-26" or "m:2026-11"
    limit: int


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a finished request owes, and the usage log line written with it."""

    cost: int
    line: dict[str, Any]


def _plain(row: Row[Any]) -> dict[str, Any]:
    """A row as a dict with plain ``str`` keys (SQLAlchemy's names are a str subclass orjson refuses)."""
    return {str(k): v for k, v in row._asdict().items()}


def _now() -> int:
    return int(time.time())


_USAGE_COLUMNS = (
    "created_at",
    "request_id",
    "account_id",
    "key_id",
    "model",
    "channel",
    "upstream_model",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost",
    "uncollected",
    "latency_ms",
    "ttft_ms",
    "queue_ms",
    "status",
    "client_ip",
    "estimated",
    "omitted_tools",
)
_INSERT_USAGE = "INSERT INTO usage_log ({}) VALUES ({})".format(
    ", ".join(_USAGE_COLUMNS), ", ".join(":" + c for c in _USAGE_COLUMNS)
)
_HOLD = (
    "UPDATE accounts SET reserved = reserved + :amount WHERE id = :account AND balance - reserved >= :amount"
)
_SPEND_ROW = (
    "INSERT INTO key_spend (key_id, period, spent, reserved) VALUES (:key, :period, 0, 0) "
    "ON CONFLICT (key_id, period) DO NOTHING"
)
_HOLD_SPEND = (
    "UPDATE key_spend SET reserved = reserved + :amount "
    "WHERE key_id = :key AND period = :period AND spent + reserved + :amount <= :limit"
)
_OPEN = (
    "INSERT INTO reservations (id, account_id, key_id, node, model, amount, periods, status, created_at) "
    "VALUES (:id, :account, :key, :node, :model, :amount, :periods, 'open', :now)"
)
_FIND = "SELECT account_id, key_id, amount, periods, status FROM reservations WHERE id = :id"
_CLOSE = (
    "UPDATE reservations SET status = :status, settled_at = :now, cost = :charge "
    "WHERE id = :id AND status = 'open'"
)
_CHARGE = "UPDATE accounts SET reserved = reserved - :amount, balance = balance - :charge WHERE id = :account"
_CHARGE_SPEND = (
    "UPDATE key_spend SET reserved = reserved - :amount, spent = spent + :charge "
    "WHERE key_id = :key AND period = :period"
)
_LEDGER = (
    "INSERT INTO ledger (account_id, amount, reason, reference, created_at) "
    "VALUES (:account, :amount, :reason, :reference, :now)"
)


_OPEN_OF_NODE = "SELECT id FROM reservations WHERE node = :node AND status = 'open' ORDER BY created_at"
_BALANCE = "SELECT balance, reserved FROM accounts WHERE id = :account"
_TOTAL_COST = (
    "SELECT COALESCE(SUM(cost), 0) FROM usage_log "
    "WHERE account_id = :account AND created_at >= :since AND created_at < :until"
)
_LEDGER_SUM = "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE account_id = :account"
_CREDIT = "UPDATE accounts SET balance = balance + :amount WHERE id = :account AND balance + :amount <= :cap"
_DEBIT = (
    "UPDATE accounts SET balance = balance + :amount "
    "WHERE id = :account AND balance - reserved + :amount >= 0"
)
_CREDIT_LEDGER = (
    "INSERT INTO ledger (account_id, amount, reason, note, created_at) "
    "VALUES (:account, :amount, :reason, :note, :now)"
)
_ACCOUNT = "SELECT {} FROM accounts WHERE id = :account".format(", ".join(ACCOUNT_COLUMNS))
_CLAIM = (
    "INSERT INTO idempotency_keys (key, request_hash, created_at) VALUES (:key, :hash, :now) "
    "ON CONFLICT (key) DO NOTHING"
)
_CLAIMED = "SELECT request_hash, result FROM idempotency_keys WHERE key = :key"
_REMEMBER = "UPDATE idempotency_keys SET result = :result WHERE key = :key"


def _account_now(tx: Tx, account_id: str) -> AccountRecord | None:
    row = tx.execute(_ACCOUNT, {"account": account_id}).first()
    return None if row is None else account_record(dict(zip(ACCOUNT_COLUMNS, row, strict=True)))


def _credit(
    tx: Tx, account_id: str, amount: int, reason: str, note: str | None, idempotency: Idempotency | None
) -> Credited:
    if idempotency is not None:
        claim = {"key": idempotency.key, "hash": idempotency.fingerprint, "now": _now()}
        if tx.execute(_CLAIM, claim).rowcount != 1:  # on PostgreSQL this waits for a concurrent first call
            first = tx.execute(_CLAIMED, {"key": idempotency.key}).first()
            if first is None or first[0] != idempotency.fingerprint or first[1] is None:
                raise IdempotencyKeyReused()
            return Credited(account_record(orjson.loads(first[1])), replayed=True)
    params = {"amount": amount, "account": account_id, "cap": MAX_BALANCE}
    if tx.execute(_DEBIT if amount < 0 else _CREDIT, params).rowcount != 1:
        if _account_now(tx, account_id) is None:
            raise LookupError(f"no account {account_id!r}")
        raise NotEnoughFunds() if amount < 0 else BalanceTooLarge()
    tx.execute(
        _CREDIT_LEDGER,
        {"account": account_id, "amount": amount, "reason": reason, "note": note, "now": _now()},
    )
    account = _account_now(tx, account_id)
    assert account is not None
    if idempotency is not None:
        result = orjson.dumps(asdict(account)).decode()
        tx.execute(_REMEMBER, {"key": idempotency.key, "result": result})
    return Credited(account, replayed=False)


def _reserve(
    tx: Tx, rid: str, account: str, key: str, node: str, model: str, amount: int, limits: list[SpendLimit]
) -> None:
    if tx.execute(_HOLD, {"amount": amount, "account": account}).rowcount != 1:
        raise NotEnoughFunds()
    for limit in limits:
        tx.execute(_SPEND_ROW, {"key": key, "period": limit.period})
        held = tx.execute(
            _HOLD_SPEND, {"amount": amount, "key": key, "period": limit.period, "limit": limit.limit}
        )
        if held.rowcount != 1:
            raise NotEnoughFunds(limit.period)  # raising rolls the whole transaction back
    tx.execute(
        _OPEN,
        {
            "id": rid,
            "account": account,
            "key": key,
            "node": node,
            "model": model,
            "amount": amount,
            "periods": orjson.dumps([lim.period for lim in limits]).decode(),
            "now": _now(),
        },
    )


def _settle(tx: Tx, rid: str, settlement: Settlement | None) -> bool:
    row = tx.execute(_FIND, {"id": rid}).first()
    if row is None or row[4] != "open":
        return False
    account, key, amount, periods = row[0], row[1], int(row[2]), orjson.loads(row[3])
    charge = min(settlement.cost, amount) if settlement else 0
    status = "settled" if settlement else "released"
    if tx.execute(_CLOSE, {"status": status, "now": _now(), "charge": charge, "id": rid}).rowcount != 1:
        return False
    tx.execute(_CHARGE, {"amount": amount, "charge": charge, "account": account})
    for period in periods:
        tx.execute(_CHARGE_SPEND, {"amount": amount, "charge": charge, "key": key, "period": period})
    if charge:
        tx.execute(
            _LEDGER,
            {"account": account, "amount": -charge, "reason": "charge", "reference": rid, "now": _now()},
        )
    if settlement is not None:
        line = {**settlement.line, "cost": charge, "uncollected": settlement.cost - charge}
        tx.execute(_INSERT_USAGE, {c: line.get(c) for c in _USAGE_COLUMNS})
    return True


class BillingStore:
    def __init__(self, engine: AsyncEngine, transactor: Transactor | None = None) -> None:
        self.engine = engine
        self.tx = transactor or Transactor(engine)
        self._settling: set[asyncio.Future[None]] = set()

    async def reserve(
        self,
        reservation_id: str,
        account_id: str,
        key_id: str,
        node: str,
        model: str,
        amount: int,
        limits: list[SpendLimit],
    ) -> None:
        """Hold ``amount`` atomically against the account and each of the key's spend limits."""
        await self.tx.run(
            lambda tx: _reserve(tx, reservation_id, account_id, key_id, node, model, amount, limits),
            finish=True,  # a caller cancelled meanwhile learns only after the commit, and releases it
        )

    async def settle(self, reservation_id: str, settlement: Settlement | None) -> bool:
        """Charge (at most the reserved amount) and write the usage line; ``None`` releases. Once only."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settling.add(done)
        try:
            return await self.tx.run(lambda tx: _settle(tx, reservation_id, settlement), finish=True)
        finally:
            self._settling.discard(done)
            done.set_result(None)

    async def settled(self) -> None:
        """Wait for the settlements under way. A non-streaming reply is sent before its settlement ends;
        reads of balances and usage wait here, so a client that asks right after a reply sees its charge."""
        if self._settling:
            await asyncio.gather(*self._settling)

    async def recover(self, node: str) -> int:
        """Release every reservation this node left open when it stopped (the documented crash rule)."""
        rows = await self.tx.run(lambda tx: tx.execute(_OPEN_OF_NODE, {"node": node}).rows, write=False)
        for (reservation_id,) in rows:
            await self.settle(reservation_id, None)
        return len(rows)

    async def credit(
        self,
        account_id: str,
        amount: int,
        reason: str,
        note: str | None = None,
        idempotency: Idempotency | None = None,
    ) -> Credited:
        """Top up (positive) or adjust (either sign). A debit may not eat into money held for requests.

        With ``idempotency``, a key seen before returns what its first call returned and moves no money
        (``IdempotencyKeyReused`` if that call asked for something else); the key is recorded in the
        same transaction as the credit, so a failed credit leaves no key behind."""
        return await self.tx.run(lambda tx: _credit(tx, account_id, amount, reason, note, idempotency))

    async def balance(self, account_id: str) -> tuple[int, int]:
        """(balance, reserved) of an account."""
        row = await self.tx.run(lambda tx: tx.execute(_BALANCE, {"account": account_id}).first(), write=False)
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def ledger_sum(self, account_id: str) -> int:
        row = await self.tx.run(
            lambda tx: tx.execute(_LEDGER_SUM, {"account": account_id}).first(), write=False
        )
        return int(row[0]) if row else 0

    async def usage_lines(
        self, account_id: str | None = None, since: int = 0, until: int | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        query = select(usage_log).where(usage_log.c.created_at >= since * 1000)
        if until is not None:
            query = query.where(usage_log.c.created_at < until * 1000)
        if account_id is not None:
            query = query.where(usage_log.c.account_id == account_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(usage_log.c.id.desc()).limit(limit))).all()
        return [_plain(r) for r in rows]

    async def total_cost(self, account_id: str, since: int, until: int) -> int:
        """What an account was charged from ``since`` to ``until`` (Unix seconds; the customer's view)."""
        params = {"account": account_id, "since": since * 1000, "until": until * 1000}
        row = await self.tx.run(lambda tx: tx.execute(_TOTAL_COST, params).first(), write=False)
        return int(row[0]) if row else 0


GROUPS = ("day", "model", "key")


async def usage_report(
    engine: AsyncEngine, group_by: str, account_id: str | None, since: int, until: int
) -> list[dict[str, Any]]:
    """Requests, tokens and cost per day (UTC), model or key, newest day first."""
    column = {
        "day": (usage_log.c.created_at / 86_400_000).label("day"),
        "model": usage_log.c.model.label("model"),
        "key": usage_log.c.key_id.label("key"),
    }[group_by]
    query = select(
        column,
        func.count().label("requests"),
        func.sum(usage_log.c.input_tokens).label("input_tokens"),
        func.sum(usage_log.c.cached_tokens).label("cached_tokens"),
        func.sum(usage_log.c.output_tokens).label("output_tokens"),
        func.sum(usage_log.c.reasoning_tokens).label("reasoning_tokens"),
        func.sum(usage_log.c.cost).label("cost"),
    ).where(usage_log.c.created_at >= since * 1000, usage_log.c.created_at < until * 1000)
    if account_id is not None:
        query = query.where(usage_log.c.account_id == account_id)
    query = query.group_by(column).order_by(column.desc() if group_by == "day" else column)
    async with engine.connect() as conn:
        rows = [_plain(r) for r in (await conn.execute(query)).all()]
    out = []
    for row in rows:
        item = {k: (int(v) if k != group_by and v is not None else v) for k, v in row.items()}
        if group_by == "day":
            item["day"] = time.strftime("%Y-%m-%d", time.gmtime(int(row["day"]) * 86_400))
        out.append(item)
    return out


async def ledger_entries(engine: AsyncEngine, account_id: str, limit: int = 100) -> list[dict[str, Any]]:
    query = select(ledger).where(ledger.c.account_id == account_id).order_by(ledger.c.id.desc()).limit(limit)
    async with engine.connect() as conn:
        return [_plain(r) for r in (await conn.execute(query)).all()]
