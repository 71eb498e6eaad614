"""Keys and credits in storage, on SQLite and PostgreSQL: the key policy is defined once (the dataclass drives
the columns, the principal query, the admin input and JSON), every write goes through the Transactor, and
credits with an idempotency key happen once."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.domain.keys import POLICY_FIELDS, SETTABLE_FIELDS, KeyPolicy, hash_secret, policy_json
from aicy.serving.accounts_admin import KeyInput, key_json
from aicy.storage import migrations
from aicy.storage.billing import (
    BillingStore,
    Idempotency,
    IdempotencyKeyReused,
    NotEnoughFunds,
    Settlement,
)
from aicy.storage.db import create_engine, migrate
from aicy.storage.keys import KeyStore, policy_columns
from aicy.storage.schema import api_keys
from aicy.storage.tx import Transactor
from tests.storage.test_billing_store import LINE
from tests.support import drop_postgres_database, fresh_postgres_database

FULL = KeyPolicy(
    expires_at=4_102_444_800,
    models=("gpt-5", "gpt-5.1"),
    ips=("10.0.0.0/8", "::1/128"),
    spend_limit=25_000_000,
    spend_limit_daily=1_000_000,
    spend_limit_monthly=10_000_000,
    rpm=60,
    tpm=10_000,
    shared=True,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/keys.db"
        return
    url = fresh_postgres_database()
    yield url
    drop_postgres_database(url)


Stores = tuple[AsyncEngine, KeyStore, BillingStore]


def run_with_stores(url: str, scenario: Callable[[Stores], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        engine = create_engine(url)
        transactor = Transactor(engine)
        try:
            await migrate(engine)
            return await scenario((engine, KeyStore(engine, transactor), BillingStore(engine, transactor)))
        finally:
            transactor.close()
            await engine.dispose()

    return asyncio.run(main())


def test_every_policy_field_has_its_column_input_and_json() -> None:
    columns = {c.name: c for c in api_keys.columns}
    for f in POLICY_FIELDS:
        assert f.name in columns, f"api_keys has no column for KeyPolicy.{f.name}"
    assert set(KeyInput.model_fields) == {"account", "name", "role", *SETTABLE_FIELDS}
    assert "suspended_reason" not in SETTABLE_FIELDS  # state kept by aicy, not an input
    assert set(policy_json(FULL)) == {f.name for f in POLICY_FIELDS}
    assert set(policy_columns(FULL)) == set(SETTABLE_FIELDS)


def test_the_admin_input_turns_its_own_json_back_into_the_policy() -> None:
    settable = {k: v for k, v in policy_json(FULL).items() if k in SETTABLE_FIELDS}
    spec = KeyInput.model_validate({"account": "a", "name": "k", **settable})
    assert spec.policy() == FULL


def test_a_policy_survives_storage_whole(database_url: str) -> None:
    async def scenario(stores: Stores) -> None:
        _, keys, _ = stores
        account = await keys.ensure_account("policy-owner")
        assert await keys.ensure_account("policy-owner") == account  # found, not created twice
        key_id, key = await keys.create_key(account, "full", "customer", FULL)
        principal = await keys.principal(key.secret_hash)
        assert principal is not None and principal.policy == FULL
        assert (principal.key_id, principal.account_id, principal.name) == (key_id, account, "full")
        (record,) = await keys.list_keys(account)
        assert record.policy == FULL
        assert {k: v for k, v in key_json(record).items() if k in policy_json(FULL)} == policy_json(FULL)

        await keys.suspend(key_id, "leaked")
        suspended = dataclasses.replace(FULL, suspended_reason="leaked")
        assert (await keys.principal(key.secret_hash)).policy == suspended  # type: ignore[union-attr]
        # Changing the limits leaves the suspension alone (it is state, not an input).
        await keys.update_key(key_id, policy_columns(dataclasses.replace(FULL, rpm=5)))
        assert (await keys.principal(key.secret_hash)).policy == dataclasses.replace(  # type: ignore[union-attr]
            suspended, rpm=5
        )
        await keys.update_key(key.prefix, {"enabled": False})
        assert await keys.principal(key.secret_hash) is None
        await keys.update_key(key_id, {"enabled": True})
        assert await keys.revoke(key.prefix) == 1
        assert await keys.revoke(key_id) == 0
        assert await keys.principal(key.secret_hash) is None
        with pytest.raises(ValueError):
            await keys.update_key(key_id, {"secret_hash": "x"})

        _, plain = await keys.create_key(account, "plain")
        assert (await keys.principal(plain.secret_hash)).policy == KeyPolicy()  # type: ignore[union-attr]
        assert await keys.principal(hash_secret("sk-aicy-unknown")) is None

    run_with_stores(database_url, scenario)


def test_money_and_key_writes_never_use_sqlalchemy_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite the Transactor has connections of its own: with SQLAlchemy's connections made to fail,
    every write to accounts, keys, reservations and the ledger (and every balance read) still works."""
    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/one-way.db"

    async def scenario(stores: Stores) -> None:
        _, keys, billing = stores

        def refused(*_: object, **__: object) -> Any:
            raise AssertionError("a store used a SQLAlchemy connection where the Transactor is the way in")

        monkeypatch.setattr(AsyncEngine, "begin", refused)
        monkeypatch.setattr(AsyncEngine, "connect", refused)
        account = await keys.ensure_account("one-way")
        key_id, key = await keys.create_key(account, "k", policy=FULL)
        await keys.update_key(key_id, {"rpm": 7})
        await keys.suspend(key_id, "why")
        assert (await keys.principal(key.secret_hash)).policy.rpm == 7  # type: ignore[union-attr]
        assert (
            await billing.credit(account, 5_000, "topup", None, Idempotency("k1", "f"))
        ).account.balance == 5_000
        assert (await billing.credit(account, 5_000, "topup", None, Idempotency("k1", "f"))).replayed
        await billing.credit(account, -1_000, "adjustment", "refund")
        await billing.reserve("r1", account, key_id, "node-a", "m", 2_000, [])
        await billing.reserve("r2", account, key_id, "node-a", "m", 1_000, [])
        assert await billing.settle("r1", Settlement(500, {**LINE, "account_id": account, "key_id": key_id}))
        assert await billing.recover("node-a") == 1  # r2
        assert await billing.balance(account) == (3_500, 0)
        assert await billing.ledger_sum(account) == 3_500
        assert await billing.total_cost(account, 0, 2_000_000_000) == 500
        assert await keys.revoke(key_id) == 1
        monkeypatch.undo()

    run_with_stores(url, scenario)


def test_credits_with_an_idempotency_key_happen_once(database_url: str) -> None:
    async def scenario(stores: Stores) -> None:
        _, keys, billing = stores
        account = await keys.ensure_account("idem")
        first = await billing.credit(account, 7_000, "topup", "first", Idempotency("same", "a" * 64))
        again = await billing.credit(account, 7_000, "topup", "first", Idempotency("same", "a" * 64))
        assert not first.replayed and again.replayed
        assert again.account == first.account and first.account.balance == 7_000
        with pytest.raises(IdempotencyKeyReused):
            await billing.credit(account, 9_000, "topup", None, Idempotency("same", "b" * 64))
        # A credit that fails leaves its key unused: the same key may then be used for what works.
        with pytest.raises(NotEnoughFunds):
            await billing.credit(account, -50_000, "adjustment", None, Idempotency("failed", "c" * 64))
        done = await billing.credit(account, -5_000, "adjustment", None, Idempotency("failed", "d" * 64))
        assert not done.replayed and done.account.balance == 2_000
        # Many concurrent calls with one key (separate connections on PostgreSQL): one credit.
        calls = [
            billing.credit(account, 1_000, "topup", None, Idempotency("race", "e" * 64)) for _ in range(8)
        ]
        results = await asyncio.gather(*calls)
        assert sum(not r.replayed for r in results) == 1
        assert {r.account.balance for r in results} == {3_000}
        assert await billing.balance(account) == (3_000, 0)
        assert await billing.ledger_sum(account) == 3_000

    run_with_stores(database_url, scenario)


def test_migration_4_adds_the_idempotency_table_to_an_existing_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> tuple[list[int], list[int], set[str]]:
        engine = create_engine(database_url)
        try:
            with monkeypatch.context() as m:
                m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
                before = await migrate(engine)
            after = await migrate(engine)
            async with engine.connect() as conn:
                tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
                await conn.execute(text("SELECT key, request_hash, result, created_at FROM idempotency_keys"))
            return before, after, tables
        finally:
            await engine.dispose()

    before, after, tables = asyncio.run(scenario())
    assert before == [1, 2, 3] and after == [version for version, _, _ in migrations.MIGRATIONS[3:]]
    assert "idempotency_keys" in tables


def test_migration_5_adds_the_upstream_id_to_stored_responses(database_url: str) -> None:
    """A database whose responses table predates the column (dropped here, as before migration 5)."""

    async def scenario() -> tuple[list[int], set[str]]:
        engine = create_engine(database_url)
        try:
            await migrate(engine)
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE responses DROP COLUMN upstream_id"))
                await conn.execute(text("DELETE FROM schema_migrations WHERE version = 5"))
            applied = await migrate(engine)
            async with engine.connect() as conn:
                columns = await conn.run_sync(lambda c: inspect(c).get_columns("responses"))
            return applied, {column["name"] for column in columns}
        finally:
            await engine.dispose()

    applied, columns = asyncio.run(scenario())
    assert applied == [5] and "upstream_id" in columns
