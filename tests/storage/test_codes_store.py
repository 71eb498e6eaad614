"""Top-up codes in storage, on SQLite and PostgreSQL: stored only as hashes, redeemed once even when many
redeems race (each from its own connection), every redeem a ``redeem`` ledger entry, the balance the sum of
the ledger, and operators' changes in the audit log."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from aicy.domain.codes import canonical_code, code_hint, generate_code, hash_code
from aicy.protocol.ids import new_id
from aicy.storage.audit import Change, audit_entries
from aicy.storage.billing import MAX_BALANCE, BalanceTooLarge, BillingStore, ledger_entries
from aicy.storage.codes import BatchSpec, CodeRefused, NewCode, Redeemed, TopupCodeStore
from aicy.storage.db import create_engine, migrate
from aicy.storage.keys import KeyStore
from aicy.storage.schema import topup_codes
from aicy.storage.tx import Transactor
from tests.support import drop_postgres_database, fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/codes.db"
        return
    url = fresh_postgres_database()
    yield url
    drop_postgres_database(url)


class Books:
    """The stores on one engine and transactor, as the app wires them."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.transactor = Transactor(self.engine)
        self.keys = KeyStore(self.engine, self.transactor)
        self.billing = BillingStore(self.engine, self.transactor)
        self.codes = TopupCodeStore(self.engine, self.transactor)

    async def close(self) -> None:
        self.transactor.close()
        await self.engine.dispose()

    async def balanced(self, account: str) -> int:
        """The balance, checked against the sum of the ledger."""
        balance, _ = await self.billing.balance(account)
        assert balance == await self.billing.ledger_sum(account)
        return balance


def new_batch(
    value: int, count: int, expires_at: int | None = None
) -> tuple[BatchSpec, list[str], list[NewCode]]:
    shown = [generate_code() for _ in range(count)]
    stored = []
    for code in shown:
        canonical = canonical_code(code)
        assert canonical is not None
        stored.append(NewCode(new_id("code_", 8), hash_code(canonical), code_hint(canonical)))
    return BatchSpec(new_id("batch_", 8), value, expires_at, "test batch"), shown, stored


def hashed(code: str) -> str:
    canonical = canonical_code(code)
    assert canonical is not None
    return hash_code(canonical)


def run(url: str, scenario: Any) -> Any:
    async def main() -> Any:
        books = Books(url)
        try:
            await migrate(books.engine)
            return await scenario(books)
        finally:
            await books.close()

    return asyncio.run(main())


def test_a_batch_is_stored_hashed_and_each_code_redeems_once(database_url: str) -> None:
    async def scenario(books: Books) -> None:
        account = await books.keys.ensure_account("redeemer")
        batch, shown, stored = new_batch(10_000_000, 3)
        await books.codes.create_batch(
            batch, stored, Change("key_ops", "codes.create", batch.id, {"count": 3})
        )
        async with books.engine.connect() as conn:
            rows = [tuple(map(str, r)) for r in (await conn.execute(select(topup_codes))).all()]
        dump = " ".join(" ".join(r) for r in rows)
        for code in shown:  # neither the code nor its canonical form is stored anywhere
            assert code not in dump and str(canonical_code(code)) not in dump

        done = await books.codes.redeem(hashed(shown[0]), account)
        assert isinstance(done, Redeemed) and (done.value, done.batch_id) == (10_000_000, batch.id)
        assert done.account.balance == 10_000_000 == await books.balanced(account)
        (entry,) = await ledger_entries(books.engine, account)
        assert (entry["reason"], entry["amount"], entry["reference"]) == ("redeem", 10_000_000, done.code_id)
        assert batch.id in entry["note"]

        for code, reason in ((shown[0], "redeemed"), (generate_code(), "not_found")):
            with pytest.raises(CodeRefused) as refused:
                await books.codes.redeem(hashed(code), account)
            assert refused.value.reason == reason
        assert await books.balanced(account) == 10_000_000

        revoke = Change("cli", "codes.revoke", batch.id, {"batch": batch.id})
        assert await books.codes.revoke_batch(batch.id, revoke) == 2  # the redeemed one stays redeemed
        assert await books.codes.revoke_batch(batch.id, revoke) == 0
        with pytest.raises(CodeRefused) as refused:
            await books.codes.redeem(hashed(shown[1]), account)
        assert refused.value.reason == "revoked"
        with pytest.raises(LookupError):
            await books.codes.revoke_batch("batch_nope", revoke)

        (summary,) = await books.codes.batches()
        assert (summary.id, summary.count, summary.unused, summary.redeemed, summary.revoked) == (
            batch.id,
            3,
            0,
            1,
            2,
        )
        redeemed = await books.codes.codes(batch.id, "redeemed")
        assert [(c.id, c.redeemed_by, c.status) for c in redeemed] == [(done.code_id, account, "redeemed")]
        assert len(await books.codes.codes(batch.id, "revoked")) == 2
        assert await books.codes.codes(batch.id, "unused") == []

        audit = await audit_entries(books.engine)
        assert [(e["actor"], e["action"], e["target"]) for e in audit] == [
            ("cli", "codes.revoke", batch.id),
            ("key_ops", "codes.create", batch.id),
        ]
        assert audit[0]["details"] == {"batch": batch.id, "revoked": 2}  # the no-op second revoke: no entry

    run(database_url, scenario)


def test_one_code_revoked_expired_codes_and_a_credit_that_does_not_fit(database_url: str) -> None:
    async def scenario(books: Books) -> None:
        account = await books.keys.ensure_account("edge-cases")
        batch, shown, stored = new_batch(5, 3)
        await books.codes.create_batch(batch, stored, Change("cli", "codes.create", batch.id, {}))
        change = Change("cli", "codes.revoke", None, {})
        assert await books.codes.revoke_code(hashed(shown[0]), change) == 1
        assert await books.codes.revoke_code(stored[0].id, change) == 0  # by id; already revoked
        await books.codes.redeem(hashed(shown[1]), account)
        with pytest.raises(CodeRefused) as refused:
            await books.codes.revoke_code(hashed(shown[1]), change)
        assert refused.value.reason == "redeemed"
        with pytest.raises(CodeRefused) as refused:
            await books.codes.revoke_code(hashed(generate_code()), change)
        assert refused.value.reason == "not_found"
        revocations = await audit_entries(books.engine, action="codes.revoke")
        assert [(e["target"], e["details"]) for e in revocations] == [(stored[0].id, {"batch": batch.id})]

        past, old, old_stored = new_batch(5, 1, expires_at=int(time.time()) - 1)
        await books.codes.create_batch(past, old_stored, Change("cli", "codes.create", past.id, {}))
        with pytest.raises(CodeRefused) as refused:
            await books.codes.redeem(hashed(old[0]), account)
        assert refused.value.reason == "expired"
        assert [c.status for c in await books.codes.codes(past.id)] == ["expired"]

        await books.billing.credit(account, MAX_BALANCE - 5 - 2, "topup")  # 5 already redeemed
        with pytest.raises(BalanceTooLarge):
            await books.codes.redeem(hashed(shown[2]), account)
        assert [c.status for c in await books.codes.codes(batch.id, "unused")] == ["unused"]  # not spent
        assert await books.balanced(account) == MAX_BALANCE - 2

    run(database_url, scenario)


def test_a_big_batch_goes_in_whole(database_url: str) -> None:
    async def scenario(books: Books) -> None:
        batch, shown, stored = new_batch(1, 1234)
        await books.codes.create_batch(batch, stored, Change("cli", "codes.create", batch.id, {}))
        assert (await books.codes.batches())[0].unused == 1234
        account = await books.keys.ensure_account("big")
        await books.codes.redeem(hashed(shown[-1]), account)
        assert await books.balanced(account) == 1

    run(database_url, scenario)


RACERS = 8


def test_racing_redeems_credit_a_code_once(database_url: str) -> None:
    """Eight threads, each with its own engine and connections, redeem the same codes at the same moment
    (into eight accounts, then into one): every code is credited exactly once."""

    async def setup(books: Books) -> tuple[list[str], list[str], list[str]]:
        accounts = [await books.keys.ensure_account(f"racer-{i}") for i in range(RACERS)]
        batch, shown, stored = new_batch(7_000_000, 6)
        await books.codes.create_batch(batch, stored, Change("cli", "codes.create", batch.id, {}))
        return accounts, shown, [s.id for s in stored]

    accounts, shown, _ = run(database_url, setup)
    barrier = threading.Barrier(RACERS)
    outcomes: list[list[str]] = [[] for _ in range(RACERS)]

    def racer(i: int) -> None:
        async def attempts(books: Books) -> None:
            await books.billing.balance(accounts[i])  # connections open before the race starts
            for round_ in range(len(shown)):
                barrier.wait()
                account = accounts[i] if round_ % 2 == 0 else accounts[0]
                try:
                    await books.codes.redeem(hashed(shown[round_]), account)
                    outcomes[i].append("ok")
                except CodeRefused as refused:
                    outcomes[i].append(refused.reason)

        run(database_url, attempts)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for round_ in range(len(shown)):
        results = sorted(outcome[round_] for outcome in outcomes)
        assert results == ["ok"] + ["redeemed"] * (RACERS - 1), (round_, results)

    async def books_of(books: Books) -> int:
        total = 0
        for account in accounts:
            total += await books.balanced(account)
        async with books.engine.connect() as conn:
            entries = (
                await conn.execute(text("SELECT COUNT(*) FROM ledger WHERE reason = 'redeem'"))
            ).scalar()
        assert entries == len(shown)
        return total

    assert run(database_url, books_of) == 7_000_000 * len(shown)


def test_a_bulky_transaction_leaves_the_loop_on_sqlite() -> None:
    """A big batch is written on the Transactor's waiting thread, so the loop serves requests meanwhile
    (measured: a batch of 10,000 codes held the loop for its whole ~1 s before, 12–25 ms at most after)."""
    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bulky.db"

    async def scenario(books: Books) -> tuple[int, int, int]:
        def where(tx: Any) -> int:
            tx.execute("SELECT 1")
            return threading.get_ident()

        return (
            threading.get_ident(),
            await books.transactor.run(where),
            await books.transactor.run(where, bulky=True),
        )

    loop_thread, small, bulky = run(url, scenario)
    assert small == loop_thread and bulky != loop_thread
