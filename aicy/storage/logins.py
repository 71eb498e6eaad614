"""Console sign-in data of accounts: a name or e-mail, an argon2 password hash, and a session epoch that a
password change bumps (every session signed before it stops working)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.protocol.ids import new_id
from aicy.storage.codes import redeem_in
from aicy.storage.schema import accounts
from aicy.storage.tx import Transactor, Tx


@dataclass(frozen=True, slots=True)
class Login:
    account_id: str
    name: str
    email: str | None
    is_admin: bool
    password_hash: str | None
    epoch: int


_LOGIN_COLUMNS = ("id", "name", "email", "is_admin", "password_hash", "session_epoch")  # Login's fields
_SET_PASSWORD = (
    "UPDATE accounts SET password_hash = :hash, session_epoch = session_epoch + 1 WHERE id = :account"
)
_SET_EMAIL = "UPDATE accounts SET email = :email WHERE id = :account"
_NEW_ACCOUNT = (
    "INSERT INTO accounts (id, name, email, password_hash, is_admin, created_at, balance, reserved, "
    "session_epoch) VALUES (:id, :name, :email, :hash, :admin, :now, 0, 0, 0) ON CONFLICT DO NOTHING"
)


class NameTaken(Exception):
    """The account name or e-mail belongs to another account."""


def _register(
    tx: Tx, name: str, email: str | None, password_hash: str, code_hash: str | None, now: int
) -> str:
    account_id = new_id("acct_", 8)
    values: dict[str, object] = {"id": account_id, "name": name, "email": email, "hash": password_hash}
    values.update(admin=False, now=now)
    if tx.execute(_NEW_ACCOUNT, values).rowcount != 1:
        raise NameTaken()
    if code_hash is not None:
        redeem_in(tx, code_hash, account_id, now)  # a refused code rolls the new account back too
    return account_id


class LoginStore:
    def __init__(self, engine: AsyncEngine, transactor: Transactor) -> None:
        self.engine = engine
        self.tx = transactor

    async def find(self, name_or_email: str) -> Login | None:
        """The account signing in as ``name_or_email`` (an account name, or an e-mail, case-insensitive)."""
        wanted = name_or_email.strip()
        return await self._one((accounts.c.name == wanted) | (accounts.c.email == wanted.lower()))

    async def by_id(self, account_id: str) -> Login | None:
        return await self._one(accounts.c.id == account_id)

    async def _one(self, condition: ColumnElement[bool]) -> Login | None:
        query = select(*(accounts.c[name] for name in _LOGIN_COLUMNS)).where(condition)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Login(*row)

    async def set_password(self, account_id: str, password_hash: str) -> None:
        await self.tx.run(
            lambda tx: tx.execute(_SET_PASSWORD, {"hash": password_hash, "account": account_id})
        )

    async def register(
        self, name: str, email: str | None, password_hash: str, code_hash: str | None = None
    ) -> str:
        """A new customer account that can sign in, made in one transaction with the redemption of its
        invite code when there is one: either both happen, or neither (``NameTaken``, ``CodeRefused``)."""
        now = int(time.time())
        return await self.tx.run(lambda tx: _register(tx, name, email, password_hash, code_hash, now))

    async def set_email(self, account_id: str, email: str | None) -> None:
        value = email.lower() if email else None
        await self.tx.run(lambda tx: tx.execute(_SET_EMAIL, {"email": value, "account": account_id}))
