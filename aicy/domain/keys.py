"""API keys: random secrets shown once, stored as a SHA-256 hash, listed by a visible prefix."""

from __future__ import annotations

import hashlib
import secrets
import typing
from collections.abc import Mapping
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any, Literal

KEY_PREFIX = "sk-aicy-"
VISIBLE_CHARS = 12
Role = Literal["customer", "admin"]


@dataclass(frozen=True, slots=True)
class NewKey:
    secret: str
    prefix: str
    secret_hash: str


def _policy_field(kind: str, default: Any = None) -> Any:
    return field(default=default, metadata={"kind": kind})


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """What a key may do. ``None`` means no limit; money in micro-units, rates per minute.

    The one definition of a key's policy. Everything else is derived from these fields: the ``api_keys``
    columns carry the same names (tuple fields as JSON lists), the admin API's input model takes every
    field whose kind is not ``state`` (the kind says how an input is checked), and its JSON is
    ``policy_json``. Adding a field of a known kind needs a column and a migration, nothing else (a new
    kind also needs its input rule in ``serving.accounts_admin``).
    """

    expires_at: int | None = _policy_field("unix_time")
    models: tuple[str, ...] | None = _policy_field("names")
    ips: tuple[str, ...] | None = _policy_field("networks")
    spend_limit: int | None = _policy_field("money")
    spend_limit_daily: int | None = _policy_field("money")
    spend_limit_monthly: int | None = _policy_field("money")
    rpm: int | None = _policy_field("per_minute")
    tpm: int | None = _policy_field("per_minute")
    shared: bool = _policy_field("flag", False)
    suspended_reason: str | None = _policy_field("state")  # set by risk control, cleared by an operator


POLICY_FIELDS: tuple[Field[Any], ...] = fields(KeyPolicy)
_HINTS = typing.get_type_hints(KeyPolicy)


def _is_list(name: str) -> bool:
    return any(typing.get_origin(t) is tuple for t in (_HINTS[name], *typing.get_args(_HINTS[name])))


LIST_FIELDS = frozenset(f.name for f in POLICY_FIELDS if _is_list(f.name))
"""Tuples in the dataclass, lists in JSON, JSON text in the database."""
SETTABLE_FIELDS = tuple(f.name for f in POLICY_FIELDS if f.metadata["kind"] != "state")
"""What an operator may set; the rest is state aicy keeps."""


def policy_kind(name: str) -> str:
    return str(next(f for f in POLICY_FIELDS if f.name == name).metadata["kind"])


def policy_json(policy: KeyPolicy) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(policy).items()}


def policy_from(values: Mapping[str, Any]) -> KeyPolicy:
    """A policy from JSON, an input model or a row: lists become tuples, flags bools; fields absent from
    ``values`` keep their defaults."""
    out: dict[str, Any] = {}
    for f in POLICY_FIELDS:
        if f.name not in values:
            continue
        value = values[f.name]
        if value is not None and f.name in LIST_FIELDS:
            value = tuple(value)
        elif _HINTS[f.name] is bool:
            value = bool(value)
        out[f.name] = value
    return KeyPolicy(**out)


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
