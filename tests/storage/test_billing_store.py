"""Ledger invariants under random operations (hypothesis state machine), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import func, select

from aicy.storage.billing import BillingStore, NotEnoughFunds, Settlement, SpendLimit
from aicy.storage.db import create_engine, migrate
from aicy.storage.keys import KeyStore
from aicy.storage.schema import key_spend, reservations
from aicy.storage.tx import Transactor
from tests.support import drop_postgres_database, fresh_postgres_database

LINE: dict[str, Any] = {
    "created_at": 0,
    "request_id": None,
    "account_id": "",
    "key_id": "",
    "model": "m",
    "channel": None,
    "upstream_model": None,
    "input_tokens": 0,
    "cached_tokens": 0,
    "output_tokens": 0,
    "reasoning_tokens": 0,
    "latency_ms": 0,
    "ttft_ms": None,
    "queue_ms": 0,
    "status": "completed",
    "client_ip": None,
    "estimated": False,
    "omitted_tools": None,
}


def machine_for(url: str) -> type[RuleBasedStateMachine]:
    class Ledger(RuleBasedStateMachine):
        """Random top-ups, reservations, settlements and releases; the books must always balance."""

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.engine = create_engine(url)
            self.run(migrate(self.engine))
            self.transactor = Transactor(self.engine)
            self.store = BillingStore(self.engine, self.transactor)
            keys = KeyStore(self.engine, self.transactor)
            self.account = self.run(keys.ensure_account(f"acct-{os.urandom(4).hex()}"))
            self.key, _ = self.run(keys.create_key(self.account, "k"))
            self.open: list[str] = []
            self.limit = SpendLimit("total", 5_000)
            self.count = 0

        def run(self, coro: Any) -> Any:
            return self.loop.run_until_complete(coro)

        def teardown(self) -> None:
            self.transactor.close()
            self.run(self.engine.dispose())
            self.loop.close()

        @rule(amount=st.integers(1, 10_000))
        def top_up(self, amount: int) -> None:
            self.run(self.store.credit(self.account, amount, "topup"))

        @rule(amount=st.integers(0, 3_000))
        def reserve(self, amount: int) -> None:
            self.count += 1
            rid = f"r{self.count}-{os.urandom(3).hex()}"
            try:
                self.run(self.store.reserve(rid, self.account, self.key, "node", "m", amount, [self.limit]))
                self.open.append(rid)
            except NotEnoughFunds:
                pass

        @precondition(lambda self: self.open)
        @rule(data=st.data())
        def settle(self, data: st.DataObject) -> None:
            rid = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
            owed = data.draw(st.integers(0, 4_000))
            line = {**LINE, "account_id": self.account, "key_id": self.key}
            assert self.run(self.store.settle(rid, Settlement(owed, line)))
            assert not self.run(self.store.settle(rid, Settlement(owed, line))), "settled twice"

        @precondition(lambda self: self.open)
        @rule()
        def release(self) -> None:
            assert self.run(self.store.settle(self.open.pop(), None))

        @rule(amount=st.integers(-5_000, 5_000))
        def adjust(self, amount: int) -> None:
            try:
                self.run(self.store.credit(self.account, amount, "adjustment"))
            except NotEnoughFunds:
                assert amount < 0

        @invariant()
        def books_balance(self) -> None:
            balance, reserved = self.run(self.store.balance(self.account))
            assert balance == self.run(self.store.ledger_sum(self.account))
            assert balance - reserved >= 0

            async def held() -> tuple[int, int]:
                async with self.engine.connect() as conn:
                    open_sum = (
                        await conn.execute(
                            select(func.coalesce(func.sum(reservations.c.amount), 0)).where(
                                reservations.c.account_id == self.account, reservations.c.status == "open"
                            )
                        )
                    ).scalar()
                    spend = (
                        await conn.execute(
                            select(key_spend.c.spent + key_spend.c.reserved).where(
                                key_spend.c.key_id == self.key
                            )
                        )
                    ).scalar()
                return int(open_sum or 0), int(spend or 0)

            open_sum, spend = self.run(held())
            assert reserved == open_sum
            assert spend <= self.limit.limit

    return Ledger


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_ledger_invariants(backend: str) -> None:
    if backend == "sqlite":
        folder = tempfile.mkdtemp()
        url = f"sqlite+aiosqlite:///{folder}/ledger.db"
    else:
        url = fresh_postgres_database()
    try:
        machine = machine_for(url)
        machine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
        machine.TestCase().runTest()
    finally:
        if backend == "postgresql":
            drop_postgres_database(url)
