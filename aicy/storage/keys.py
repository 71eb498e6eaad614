"""Accounts and API keys in the database.

Every write (accounts, keys) and the principal lookup go through the ``Transactor`` (``storage.tx``), the
same path as the money-moving transactions, so the rows they share are only ever locked one way. The
listings and lookups used by the admin API and the CLI (``account``, ``list_accounts``, ``list_keys``,
``count_accounts``) read through SQLAlchemy Core: they write nothing, take no write lock, and are the only
queries here whose shape changes with their arguments.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.domain.keys import (
    LIST_FIELDS,
    POLICY_FIELDS,
    SETTABLE_FIELDS,
    KeyPolicy,
    NewKey,
    Principal,
    Role,
    generate_key,
    policy_from,
)
from aicy.protocol.ids import new_id
from aicy.storage.schema import accounts, api_keys
from aicy.storage.tx import Transactor, Tx


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    account_id: str
    account_name: str
    name: str
    prefix: str
    role: str
    created_at: int
    revoked_at: int | None
    enabled: bool
    policy: KeyPolicy


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: str
    name: str
    is_admin: bool
    balance: int
    reserved: int
    created_at: int


ACCOUNT_COLUMNS = ("id", "name", "is_admin", "balance", "reserved", "created_at")


def account_record(row: Mapping[Any, Any]) -> AccountRecord:
    return AccountRecord(
        str(row["id"]),
        str(row["name"]),
        bool(row["is_admin"]),
        int(row["balance"]),
        int(row["reserved"]),
        int(row["created_at"]),
    )


POLICY_COLUMNS = tuple(f.name for f in POLICY_FIELDS)  # the columns are named like the fields


def policy_of_row(row: Mapping[Any, Any]) -> KeyPolicy:
    """A key's policy from its ``api_keys`` columns (list fields are stored as JSON text)."""
    values = {name: row[name] for name in POLICY_COLUMNS}
    for name in LIST_FIELDS:
        if values[name] is not None:
            values[name] = orjson.loads(values[name])
    return policy_from(values)


def policy_columns(policy: KeyPolicy, names: tuple[str, ...] = SETTABLE_FIELDS) -> dict[str, Any]:
    """The ``api_keys`` column values of ``names`` (by default what an operator sets, not the key's state)."""
    out = {}
    for name in names:
        value = getattr(policy, name)
        out[name] = orjson.dumps(list(value)).decode() if name in LIST_FIELDS and value is not None else value
    return out


_PRINCIPAL_COLUMNS = ("id", "account_id", "role", "name", *POLICY_COLUMNS)
_PRINCIPAL = (
    f"SELECT {', '.join(_PRINCIPAL_COLUMNS)} FROM api_keys "
    "WHERE secret_hash = :hash AND revoked_at IS NULL AND enabled = :on"
)
_ADD_ACCOUNT = (
    "INSERT INTO accounts (id, name, is_admin, created_at, balance, reserved) "
    "VALUES (:id, :name, :admin, :now, 0, 0) ON CONFLICT (name) DO NOTHING"
)
_ACCOUNT_NAMED = "SELECT id FROM accounts WHERE name = :name"
_KEY_COLUMNS = (
    "id",
    "account_id",
    "name",
    "prefix",
    "secret_hash",
    "role",
    "created_at",
    "revoked_at",
    "enabled",
    *SETTABLE_FIELDS,
)
_ADD_KEY = "INSERT INTO api_keys ({}) VALUES ({})".format(
    ", ".join(_KEY_COLUMNS), ", ".join(":" + c for c in _KEY_COLUMNS)
)
_KEY_MATCH = "(id = :match OR prefix = :match)"
_REVOKE = f"UPDATE api_keys SET revoked_at = :now WHERE {_KEY_MATCH} AND revoked_at IS NULL"
_WRITABLE_KEY_COLUMNS = frozenset(c.name for c in api_keys.columns) - {
    "id",
    "account_id",
    "prefix",
    "secret_hash",
    "created_at",
}


def _principal_row(tx: Tx, secret_hash: str) -> tuple[Any, ...] | None:
    return tx.execute(_PRINCIPAL, {"hash": secret_hash, "on": True}).first()


def _ensure_account(tx: Tx, name: str, is_admin: bool) -> str:
    values = {"id": new_id("acct_", 8), "name": name, "admin": is_admin, "now": int(time.time())}
    tx.execute(_ADD_ACCOUNT, values)  # a name taken meanwhile by another writer is simply found below
    row = tx.execute(_ACCOUNT_NAMED, {"name": name}).first()
    assert row is not None
    return str(row[0])


def _update_key(tx: Tx, match: str, values: Mapping[str, Any]) -> int:
    unknown = set(values) - _WRITABLE_KEY_COLUMNS
    if unknown:
        raise ValueError(f"not writable key columns: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = :v_{name}" for name in values)
    params = {"match": match, **{f"v_{name}": value for name, value in values.items()}}
    return tx.execute(f"UPDATE api_keys SET {assignments} WHERE {_KEY_MATCH}", params).rowcount


class KeyStore:
    def __init__(self, engine: AsyncEngine, transactor: Transactor | None = None) -> None:
        self.engine = engine
        self.tx = transactor or Transactor(engine)

    async def count_accounts(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(accounts))).scalar_one())

    async def ensure_account(self, name: str, is_admin: bool = False) -> str:
        """The id of the account named ``name``, created (balance zero) if there is none."""
        return await self.tx.run(lambda tx: _ensure_account(tx, name, is_admin))

    async def account(self, name_or_id: str) -> AccountRecord | None:
        query = select(accounts).where((accounts.c.id == name_or_id) | (accounts.c.name == name_or_id))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else account_record(row._mapping)

    async def list_accounts(self) -> list[AccountRecord]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(accounts).order_by(accounts.c.created_at, accounts.c.name))
            ).all()
        return [account_record(r._mapping) for r in rows]

    async def create_key(
        self, account_id: str, name: str, role: Role = "customer", policy: KeyPolicy | None = None
    ) -> tuple[str, NewKey]:
        key = generate_key()
        key_id = new_id("key_", 8)
        values = {
            "id": key_id,
            "account_id": account_id,
            "name": name,
            "prefix": key.prefix,
            "secret_hash": key.secret_hash,
            "role": role,
            "created_at": int(time.time()),
            "revoked_at": None,
            "enabled": True,
            **policy_columns(policy or KeyPolicy()),
        }
        await self.tx.run(lambda tx: tx.execute(_ADD_KEY, values))
        return key_id, key

    async def principal(self, secret_hash: str) -> Principal | None:
        """The caller behind a key hash; revoked and disabled keys are unknown."""
        row = await self.tx.run(lambda tx: _principal_row(tx, secret_hash), write=False)
        if row is None:
            return None
        found = dict(zip(_PRINCIPAL_COLUMNS, row, strict=True))
        role: Role = "admin" if found["role"] == "admin" else "customer"
        return Principal(
            key_id=found["id"],
            account_id=found["account_id"],
            role=role,
            policy=policy_of_row(found),
            name=found["name"],
        )

    async def list_keys(self, account_id: str | None = None) -> list[KeyRecord]:
        query = select(api_keys, accounts.c.name.label("account_name")).join(accounts)
        if account_id is not None:
            query = query.where(api_keys.c.account_id == account_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(api_keys.c.created_at, api_keys.c.id))).all()
        return [
            KeyRecord(
                r.id,
                r.account_id,
                r.account_name,
                r.name,
                r.prefix,
                r.role,
                r.created_at,
                r.revoked_at,
                bool(r.enabled),
                policy_of_row(r._mapping),
            )
            for r in rows
        ]

    async def revoke(self, key_id_or_prefix: str) -> int:
        """Revoke by key id or visible prefix; returns how many keys were revoked."""
        params = {"match": key_id_or_prefix, "now": int(time.time())}
        return await self.tx.run(lambda tx: tx.execute(_REVOKE, params).rowcount)

    async def update_key(self, key_id_or_prefix: str, values: dict[str, Any]) -> int:
        """Set ``values`` (``api_keys`` columns) on the key with this id or visible prefix."""
        if not values:
            return 0
        return await self.tx.run(lambda tx: _update_key(tx, key_id_or_prefix, values))

    async def suspend(self, key_id: str, reason: str) -> None:
        await self.update_key(key_id, {"suspended_at": int(time.time()), "suspended_reason": reason})
