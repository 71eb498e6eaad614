"""Balances, reservations, the ledger, key spend and the usage log: every write that moves money.

Invariants kept here (and checked by the tests): an account's ``balance`` equals the sum of its ledger
entries; ``reserved`` equals the sum of its open reservations; ``balance - reserved`` never goes below
zero through a reservation; a reservation is settled or released exactly once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aicy.storage.schema import accounts, key_spend, ledger, reservations, usage_log


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


class BillingStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _ensure_spend_row(self, conn: AsyncConnection, key_id: str, period: str) -> None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(key_spend).values(key_id=key_id, period=period, spent=0, reserved=0)
        await conn.execute(stmt.on_conflict_do_nothing())

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
        async with self.engine.begin() as conn:
            held = await conn.execute(
                accounts.update()
                .where(accounts.c.id == account_id, accounts.c.balance - accounts.c.reserved >= amount)
                .values(reserved=accounts.c.reserved + amount)
            )
            if held.rowcount != 1:
                raise NotEnoughFunds()
            for limit in limits:
                await self._ensure_spend_row(conn, key_id, limit.period)
                ok = await conn.execute(
                    key_spend.update()
                    .where(
                        key_spend.c.key_id == key_id,
                        key_spend.c.period == limit.period,
                        key_spend.c.spent + key_spend.c.reserved + amount <= limit.limit,
                    )
                    .values(reserved=key_spend.c.reserved + amount)
                )
                if ok.rowcount != 1:
                    raise NotEnoughFunds(limit.period)  # leaving the block rolls everything back
            await conn.execute(
                reservations.insert().values(
                    id=reservation_id,
                    account_id=account_id,
                    key_id=key_id,
                    node=node,
                    model=model,
                    amount=amount,
                    periods=orjson.dumps([lim.period for lim in limits]).decode(),
                    status="open",
                    created_at=_now(),
                )
            )

    async def settle(self, reservation_id: str, settlement: Settlement | None) -> bool:
        """Charge (at most the reserved amount) and write the usage line; ``None`` releases. Once only."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(select(reservations).where(reservations.c.id == reservation_id))
            ).first()
            if row is None or row.status != "open":
                return False
            charge = min(settlement.cost, row.amount) if settlement else 0
            closed = await conn.execute(
                reservations.update()
                .where(reservations.c.id == reservation_id, reservations.c.status == "open")
                .values(status="settled" if settlement else "released", settled_at=_now(), cost=charge)
            )
            if closed.rowcount != 1:
                return False
            await conn.execute(
                accounts.update()
                .where(accounts.c.id == row.account_id)
                .values(reserved=accounts.c.reserved - row.amount, balance=accounts.c.balance - charge)
            )
            for period in orjson.loads(row.periods):
                await conn.execute(
                    key_spend.update()
                    .where(key_spend.c.key_id == row.key_id, key_spend.c.period == period)
                    .values(reserved=key_spend.c.reserved - row.amount, spent=key_spend.c.spent + charge)
                )
            if charge:
                await conn.execute(
                    ledger.insert().values(
                        account_id=row.account_id,
                        amount=-charge,
                        reason="charge",
                        reference=reservation_id,
                        created_at=_now(),
                    )
                )
            if settlement is not None:
                line = {**settlement.line, "cost": charge, "uncollected": settlement.cost - charge}
                await conn.execute(usage_log.insert().values(**line))
            return True

    async def log_unbilled(self, line: dict[str, Any]) -> None:
        """A usage line for a request that reserved nothing (refused before any money was held)."""
        async with self.engine.begin() as conn:
            await conn.execute(usage_log.insert().values(**line))

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
