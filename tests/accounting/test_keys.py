from __future__ import annotations

import dataclasses
import hashlib

import pytest

from aicy.domain.keys import (
    KEY_PREFIX,
    VISIBLE_CHARS,
    NewKey,
    Principal,
    generate_key,
    hash_secret,
    looks_like_key,
)


def test_generated_key_shape() -> None:
    key = generate_key()
    assert key.secret.startswith(KEY_PREFIX)
    assert len(key.secret) >= len(KEY_PREFIX) + 43  # 32 random bytes, base64url
    assert key.prefix == key.secret[:VISIBLE_CHARS]
    assert len(key.prefix) == VISIBLE_CHARS
    assert key.secret_hash == hash_secret(key.secret)
    assert looks_like_key(key.secret)


def test_generated_keys_differ() -> None:
    keys = [generate_key() for _ in range(20)]
    assert len({k.secret for k in keys}) == 20
    assert len({k.secret_hash for k in keys}) == 20


def test_hash_is_sha256_hex_of_the_secret() -> None:
    assert hash_secret("sk-aicy-abc") == hashlib.sha256(b"sk-aicy-abc").hexdigest()
    assert len(hash_secret("x")) == 64
    assert hash_secret("a") != hash_secret("b")


def test_hash_does_not_contain_the_secret() -> None:
    key = generate_key()
    assert key.secret not in key.secret_hash


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("sk-aicy-abcdef", True),
        ("12345678", True),
        ("1234567", False),
        ("x" * 256, True),
        ("x" * 257, False),
        ("sk-aicy abcdef", False),
        ("sk-aicy-abc\tdef", False),
        ("sk-aicy-abcdé", False),
        ("", False),
    ],
)
def test_looks_like_key(value: str, ok: bool) -> None:
    assert looks_like_key(value) is ok


def test_principal_roles() -> None:
    assert Principal("k1", "a1", "admin").is_admin
    assert not Principal("k2", "a1", "customer").is_admin


def test_records_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        generate_key().secret = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Principal("k", "a", "customer").role = "admin"  # type: ignore[misc]
    assert NewKey("s", "p", "h") == NewKey("s", "p", "h")
