"""API keys: random secrets shown once, stored as a SHA-256 hash, listed by a visible prefix."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

KEY_PREFIX = "sk-aicy-"
VISIBLE_CHARS = 12
Role = Literal["customer", "admin"]


@dataclass(frozen=True, slots=True)
class NewKey:
    secret: str
    prefix: str
    secret_hash: str


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """What a key may do. ``None`` means no limit; money in micro-units, rates per minute."""

    expires_at: int | None = None
    models: tuple[str, ...] | None = None
    ips: tuple[str, ...] | None = None
    spend_limit: int | None = None
    spend_limit_daily: int | None = None
    spend_limit_monthly: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    shared: bool = False
    suspended_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its account and its policy."""

    key_id: str
    account_id: str
    role: Role
    policy: KeyPolicy = KeyPolicy()
    name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_secret(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast unsalted hash is safe and keeps lookups O(1).
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def generate_key() -> NewKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(secret=secret, prefix=secret[:VISIBLE_CHARS], secret_hash=hash_secret(secret))


def looks_like_key(value: str) -> bool:
    return 8 <= len(value) <= 256 and value.isascii() and not any(c.isspace() for c in value)
