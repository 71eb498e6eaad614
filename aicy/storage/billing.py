"""Balances, reservations, the ledger, key spend and the usage log: every write that moves money.

Invariants kept here (and checked by the tests): an account's ``balance`` equals the sum of its ledger
entries; ``reserved`` equals the sum of its open reservations; ``balance - reserved`` never goes below
zero through a reservation; a reservation is settled or released exactly once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.schema import accounts, ledger, reservations, usage_log
from aicy.storage.tx import Transactor, Tx


class NotEnoughFunds(Exception):
    """The account's available balance, or a key's spend limit for ``period``, cannot cover a reservation."""

    def __init__(self, period: str | None = None) -> None:
        super().__init__(period or "account")
        self.period = period


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
            lambda tx: _reserve(tx, reservation_id, account_id, key_id, node, model, amount, limits)
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
        async with self.engine.connect() as conn:
            open_ids = (
                (
                    await conn.execute(
                        select(reservations.c.id).where(
                            reservations.c.node == node, reservations.c.status == "open"
                        )
                    )
                )
                .scalars()
                .all()
            )
        for reservation_id in open_ids:
            await self.settle(reservation_id, None)
        return len(open_ids)

    async def credit(self, account_id: str, amount: int, reason: str, note: str | None = None) -> int:
        """Top up (positive) or adjust (either sign). A debit may not eat into money held for requests."""
        async with self.engine.begin() as conn:
            where = [accounts.c.id == account_id]
            if amount < 0:
                where.append(accounts.c.balance - accounts.c.reserved + amount >= 0)
            done = await conn.execute(
                accounts.update().where(and_(*where)).values(balance=accounts.c.balance + amount)
            )
            if done.rowcount != 1:
                raise NotEnoughFunds()
            await conn.execute(
                ledger.insert().values(
                    account_id=account_id, amount=amount, reason=reason, note=note, created_at=_now()
                )
            )
            balance = (
                await conn.execute(select(accounts.c.balance).where(accounts.c.id == account_id))
            ).scalar()
            return int(balance or 0)

    async def balance(self, account_id: str) -> tuple[int, int]:
        """(balance, reserved) of an account."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(accounts.c.balance, accounts.c.reserved).where(accounts.c.id == account_id)
                )
            ).first()
        return (int(row.balance), int(row.reserved)) if row else (0, 0)

    async def ledger_sum(self, account_id: str) -> int:
        async with self.engine.connect() as conn:
            total = (
                await conn.execute(
                    select(func.coalesce(func.sum(ledger.c.amount), 0)).where(
                        ledger.c.account_id == account_id
                    )
                )
            ).scalar()
        return int(total or 0)

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
        async with self.engine.connect() as conn:
            total = (
                await conn.execute(
                    select(func.coalesce(func.sum(usage_log.c.cost), 0)).where(
                        usage_log.c.account_id == account_id,
                        usage_log.c.created_at >= since * 1000,
                        usage_log.c.created_at < until * 1000,
                    )
                )
            ).scalar()
        return int(total or 0)


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
