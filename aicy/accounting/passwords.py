"""Console passwords: argon2id hashes (argon2-cffi's defaults), checked in a thread so a login does not
stall the event loop for the ~50 ms a hash costs."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps a login from being an expensive hash of megabytes
_HASHER = PasswordHasher()  # immutable parameters, shared on purpose: no state changes after import


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"A password must be {MIN_LENGTH} to {MAX_LENGTH} characters."
    if "\x00" in password:
        return "A password must not contain NUL characters."
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an account without a password, or a damaged hash, never matches
    (a dummy hash is still computed, so the time taken does not tell whether the account exists)."""
    if len(password) > MAX_LENGTH:
        return False
    target = stored_hash or _DUMMY

    def check() -> bool:
        try:
            return _HASHER.verify(target, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


_DUMMY = _HASHER.hash("aicy-no-such-account")
