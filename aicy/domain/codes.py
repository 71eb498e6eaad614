"""Top-up codes: random, easy to type, shown once, stored as a SHA-256 hash like API keys.

A code is ``aicy-`` and five groups of five characters of Crockford's base32 (digits and lower-case letters
without i, l, o, u): 25 × 5 = 125 random bits from ``secrets``, so guessing one is hopeless even without the
rate limit. Reading a code back forgives what people get wrong when they type one: case, spaces, dashes,
the prefix left out, and the letters Crockford maps to digits (i and l read as 1, o as 0).
"""

from __future__ import annotations

import hashlib
import secrets

CODE_PREFIX = "aicy-"
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32: no i, l, o, u
GROUPS = 5
GROUP_LENGTH = 5
BODY_LENGTH = GROUPS * GROUP_LENGTH
ENTROPY_BITS = BODY_LENGTH * 5  # 125
HINT_LENGTH = 4
"""The last characters of a code, kept in clear so an operator can tell codes apart (105 bits stay secret)."""
MAX_INPUT_LENGTH = 200
"""The longest text taken as a code on redeem (a real one is 35 characters; the rest is slack for spaces)."""

_SEPARATORS = str.maketrans("", "", " \t\r\n-_")
_LOOKALIKES = str.maketrans("ilo", "110")


def _body(bits: int) -> str:
    return "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(BODY_LENGTH))


def generate_code() -> str:
    """A new code as it is shown: ``aicy-xxxxx-xxxxx-xxxxx-xxxxx-xxxxx``."""
    body = _body(secrets.randbits(ENTROPY_BITS))
    groups = [body[i : i + GROUP_LENGTH] for i in range(0, BODY_LENGTH, GROUP_LENGTH)]
    return CODE_PREFIX + "-".join(groups)


def canonical_code(text: str) -> str | None:
    """The 25 characters that identify a code, from what a customer typed; ``None`` when it cannot be one."""
    if len(text) > MAX_INPUT_LENGTH or not text.isascii():
        return None
    compact = text.translate(_SEPARATORS).lower()
    prefix = CODE_PREFIX.rstrip("-")
    if len(compact) == len(prefix) + BODY_LENGTH and compact.startswith(prefix):
        compact = compact[len(prefix) :]
    compact = compact.translate(_LOOKALIKES)
    if len(compact) != BODY_LENGTH or any(c not in ALPHABET for c in compact):
        return None
    return compact


def hash_code(canonical: str) -> str:
    """SHA-256 of the canonical code, as API keys are stored: 125 random bits need no salt or slow hash."""
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def code_hint(canonical: str) -> str:
    return canonical[-HINT_LENGTH:]
