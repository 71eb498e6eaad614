"""Accounts and API keys in the database."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.accounting.keys import NewKey, Principal, Role, generate_key
from aicy.protocol.ids import new_id
from aicy.storage.schema import accounts, api_keys


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


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

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
                    id=account_id, name=name, is_admin=is_admin, created_at=int(time.time())
                )
            )
            return account_id

    async def create_key(self, account_id: str, name: str, role: Role = "customer") -> tuple[str, NewKey]:
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
                )
            )
        return key_id, key

    async def principal(self, secret_hash: str) -> Principal | None:
        query = select(api_keys.c.id, api_keys.c.account_id, api_keys.c.role).where(
            api_keys.c.secret_hash == secret_hash, api_keys.c.revoked_at.is_(None)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Principal(
            key_id=row.id, account_id=row.account_id, role="admin" if row.role == "admin" else "customer"
        )

    async def list_keys(self) -> list[KeyRecord]:
        query = (
            select(api_keys, accounts.c.name.label("account_name"))
            .join(accounts)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            KeyRecord(
                r.id, r.account_id, r.account_name, r.name, r.prefix, r.role, r.created_at, r.revoked_at
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
