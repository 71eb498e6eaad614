"""Top-up codes as text: long and random enough not to be guessed, forgiving when typed back."""

from __future__ import annotations

import hashlib
import math
import re

import pytest

from aicy.domain.codes import ALPHABET, ENTROPY_BITS, canonical_code, code_hint, generate_code, hash_code

SHAPE = re.compile(r"aicy(-[0-9a-hjkmnp-tv-z]{5}){5}")


def test_codes_have_the_shape_and_entropy_promised() -> None:
    codes = [generate_code() for _ in range(2000)]
    assert all(SHAPE.fullmatch(c) for c in codes), codes[:3]
    assert len(set(codes)) == len(codes)
    assert len(ALPHABET) == 32 and not set("ilou") & set(ALPHABET)
    assert ENTROPY_BITS >= 100 and 25 * math.log2(len(ALPHABET)) == ENTROPY_BITS
    # Every position uses the whole alphabet (a bias or a constant position would show here).
    bodies = [canonical_code(c) for c in codes]
    for position in range(25):
        assert len({b[position] for b in bodies if b}) == 32


def test_what_people_get_wrong_when_typing_is_forgiven() -> None:
    code = "aicy-01abc-defgh-jkmnp-qrstv-wxyz1"
    canonical = "01abcdefghjkmnpqrstvwxyz1"
    for typed in (
        code,
        code.upper(),
        f"  {code}\n",
        code.replace("-", ""),
        code.replace("-", " "),
        code[len("aicy-") :],
        "AICY-O1ABC-DEFGH-JKMNP-QRSTV-WXYZL",  # O for 0, L for 1
        "aicy-0iabc-defgh-jkmnp-qrstv-wxyzI",  # i and I for 1
        "aicy_01abc_defgh_jkmnp_qrstv_wxyz1",
    ):
        assert canonical_code(typed) == canonical, typed


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "aicy-",
        "aicy-01abc-defgh-jkmnp-qrstv-wxyz",  # a character short
        "aicy-01abc-defgh-jkmnp-qrstv-wxyz11",  # one too many
        "aicy-01abc-defgh-jkmnp-qrstv-wxyzu",  # u is not in the alphabet
        "aicy-01abc-defgh-jkmnp-qrstv-wxyz\x00",
        "aicy-01abc-defgh-jkmnp-qrstv-wxyz１",  # fullwidth digit
        "xxxx-01abc-defgh-jkmnp-qrstv-wxyz1",  # another prefix
        "sk-aicy-" + "a" * 40,
        "aicy-01abc-defgh-jkmnp-qrstv-wxyz1" + " " * 300,  # too long to be read at all
    ],
)
def test_what_cannot_be_a_code(typed: str) -> None:
    assert canonical_code(typed) is None


def test_codes_are_stored_as_sha256_of_the_canonical_form() -> None:
    code = generate_code()
    canonical = canonical_code(code)
    assert canonical is not None
    assert hash_code(canonical) == hashlib.sha256(canonical.encode()).hexdigest()
    assert canonical not in hash_code(canonical)
    assert code_hint(canonical) == canonical[-4:]
