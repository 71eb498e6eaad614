"""Accounts and API keys in the database."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.domain.keys import KeyPolicy, NewKey, Principal, Role, generate_key
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


def _json_list(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(orjson.loads(value))


def _policy(row: Row[Any]) -> KeyPolicy:
    return KeyPolicy(
        expires_at=row.expires_at,
        models=_json_list(row.models),
        ips=_json_list(row.ips),
        spend_limit=row.spend_limit,
        spend_limit_daily=row.spend_limit_daily,
        spend_limit_monthly=row.spend_limit_monthly,
        rpm=row.rpm,
        tpm=row.tpm,
        shared=bool(row.shared),
        suspended_reason=row.suspended_reason,
    )


def policy_columns(policy: KeyPolicy) -> dict[str, Any]:
    return {
        "expires_at": policy.expires_at,
        "models": None if policy.models is None else orjson.dumps(list(policy.models)).decode(),
        "ips": None if policy.ips is None else orjson.dumps(list(policy.ips)).decode(),
        "spend_limit": policy.spend_limit,
        "spend_limit_daily": policy.spend_limit_daily,
        "spend_limit_monthly": policy.spend_limit_monthly,
        "rpm": policy.rpm,
        "tpm": policy.tpm,
        "shared": policy.shared,
    }


_PRINCIPAL = (
    "SELECT id, account_id, role, name, expires_at, models, ips, spend_limit, spend_limit_daily, "
    "spend_limit_monthly, rpm, tpm, shared, suspended_reason FROM api_keys "
    "WHERE secret_hash = :hash AND revoked_at IS NULL AND enabled = :on"
)


def _principal_row(tx: Tx, secret_hash: str) -> tuple[Any, ...] | None:
    return tx.execute(_PRINCIPAL, {"hash": secret_hash, "on": True}).first()


class KeyStore:
    def __init__(self, engine: AsyncEngine, transactor: Transactor | None = None) -> None:
        self.engine = engine
        self.tx = transactor or Transactor(engine)

    async def count_accounts(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(accounts))).scalar_one())

    async def ensure_account(self, name: str, is_admin: bool = False) -> str:
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(accounts.c.id).where(accounts.c.name == name))).scalar()
            if found is not None:
                return str(found)
            account_id = new_id("acct_", 8)
            await conn.execute(
                accounts.insert().values(
                    id=account_id,
                    name=name,
                    is_admin=is_admin,
                    created_at=int(time.time()),
                    balance=0,
                    reserved=0,
                )
            )
            return account_id

    async def account(self, name_or_id: str) -> AccountRecord | None:
        query = select(accounts).where((accounts.c.id == name_or_id) | (accounts.c.name == name_or_id))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (
            None
            if row is None
            else AccountRecord(
                row.id, row.name, bool(row.is_admin), int(row.balance), int(row.reserved), row.created_at
            )
        )

    async def list_accounts(self) -> list[AccountRecord]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(accounts).order_by(accounts.c.created_at, accounts.c.name))
            ).all()
        return [
            AccountRecord(r.id, r.name, bool(r.is_admin), int(r.balance), int(r.reserved), r.created_at)
            for r in rows
        ]

    async def create_key(
        self, account_id: str, name: str, role: Role = "customer", policy: KeyPolicy | None = None
    ) -> tuple[str, NewKey]:
        key = generate_key()
        key_id = new_id("key_", 8)
        async with self.engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=key_id,
                    account_id=account_id,
                    name=name,
                    prefix=key.prefix,
                    secret_hash=key.secret_hash,
                    role=role,
                    created_at=int(time.time()),
                    revoked_at=None,
                    enabled=True,
                    **policy_columns(policy or KeyPolicy()),
                )
            )
        return key_id, key

    async def principal(self, secret_hash: str) -> Principal | None:
        """The caller behind a key hash; revoked and disabled keys are unknown."""
        row = await self.tx.run(lambda tx: _principal_row(tx, secret_hash), write=False)
        if row is None:
            return None
        (
            key_id,
            account_id,
            role,
            name,
            expires_at,
            models,
            ips,
            limit,
            daily,
            monthly,
            rpm,
            tpm,
            shared,
            suspended,
        ) = row
        policy = KeyPolicy(
            expires_at=expires_at,
            models=_json_list(models),
            ips=_json_list(ips),
            spend_limit=limit,
            spend_limit_daily=daily,
            spend_limit_monthly=monthly,
            rpm=rpm,
            tpm=tpm,
            shared=bool(shared),
            suspended_reason=suspended,
        )
        role_name: Role = "admin" if role == "admin" else "customer"
        return Principal(key_id=key_id, account_id=account_id, role=role_name, policy=policy, name=name)

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
                _policy(r),
            )
            for r in rows
        ]

    async def revoke(self, key_id_or_prefix: str) -> int:
        """Revoke by key id or visible prefix; returns how many keys were revoked."""
        where = (api_keys.c.id == key_id_or_prefix) | (api_keys.c.prefix == key_id_or_prefix)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(where, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=int(time.time()))
            )
            return int(result.rowcount)

    async def update_key(self, key_id_or_prefix: str, values: dict[str, Any]) -> int:
        where = (api_keys.c.id == key_id_or_prefix) | (api_keys.c.prefix == key_id_or_prefix)
        async with self.engine.begin() as conn:
            return int((await conn.execute(api_keys.update().where(where).values(**values))).rowcount)

    async def suspend(self, key_id: str, reason: str) -> None:
        await self.update_key(key_id, {"suspended_at": int(time.time()), "suspended_reason": reason})
