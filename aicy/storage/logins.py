"""Console sign-in data of accounts: a name or e-mail, an argon2 password hash, and a session epoch that a
password change bumps (every session signed before it stops working)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.schema import accounts
from aicy.storage.tx import Transactor


@dataclass(frozen=True, slots=True)
class Login:
    account_id: str
    name: str
    email: str | None
    is_admin: bool
    password_hash: str | None
    epoch: int


_SET_PASSWORD = (
    "UPDATE accounts SET password_hash = :hash, session_epoch = session_epoch + 1 WHERE id = :account"
)
_SET_EMAIL = "UPDATE accounts SET email = :email WHERE id = :account"


class LoginStore:
    def __init__(self, engine: AsyncEngine, transactor: Transactor) -> None:
        self.engine = engine
        self.tx = transactor

    async def find(self, name_or_email: str) -> Login | None:
        """The account signing in as ``name_or_email`` (an account name, or an e-mail, case-insensitive)."""
        wanted = name_or_email.strip()
        query = select(
            accounts.c.id,
            accounts.c.name,
            accounts.c.email,
            accounts.c.is_admin,
            accounts.c.password_hash,
            accounts.c.session_epoch,
        ).where((accounts.c.name == wanted) | (accounts.c.email == wanted.lower()))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Login(*row)

    async def by_id(self, account_id: str) -> Login | None:
        query = select(
            accounts.c.id,
            accounts.c.name,
            accounts.c.email,
            accounts.c.is_admin,
            accounts.c.password_hash,
            accounts.c.session_epoch,
        ).where(accounts.c.id == account_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Login(*row)

    async def set_password(self, account_id: str, password_hash: str) -> None:
        await self.tx.run(
            lambda tx: tx.execute(_SET_PASSWORD, {"hash": password_hash, "account": account_id})
        )

    async def set_email(self, account_id: str, email: str | None) -> None:
        value = email.lower() if email else None
        await self.tx.run(lambda tx: tx.execute(_SET_EMAIL, {"email": value, "account": account_id}))
