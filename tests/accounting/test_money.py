"""Property tests of the price arithmetic."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicy.accounting.money import MAX_AMOUNT, AmountError, amount_from_json, cost, parse_usd, worst_case
from aicy.domain.models import Prices
from aicy.types import Usage

tokens = st.integers(min_value=0, max_value=10_000_000)
price = st.integers(min_value=0, max_value=100_000_000)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    input_tokens = draw(tokens)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=draw(tokens),
        cached_tokens=draw(st.integers(0, input_tokens)),
        reasoning_tokens=0,
    )


@given(usages(), price, price, price)
def test_cost_is_the_exact_price_rounded_up_once(usage: Usage, p_in: int, p_cached: int, p_out: int) -> None:
    prices = Prices(p_in, p_cached, p_out)
    exact = Fraction(
        (usage.input_tokens - usage.cached_tokens) * p_in
        + usage.cached_tokens * p_cached
        + usage.output_tokens * p_out,
        1_000_000,
    )
    charged = cost(usage, prices)
    assert isinstance(charged, int)
    assert exact <= charged < exact + 1


@given(usages(), price, price, price)
def test_the_reservation_covers_the_cost(usage: Usage, p_in: int, p_cached: int, p_out: int) -> None:
    prices = Prices(p_in, p_cached, p_out)
    assert worst_case(usage.input_tokens, usage.output_tokens, prices) >= cost(usage, prices)


@given(usages(), usages(), price, price, price)
def test_cost_grows_with_usage(a: Usage, b: Usage, p_in: int, p_cached: int, p_out: int) -> None:
    prices = Prices(p_in, min(p_cached, p_in), p_out)
    bigger = Usage(a.input_tokens + b.input_tokens, a.output_tokens + b.output_tokens, a.cached_tokens)
    assert cost(bigger, prices) >= cost(a, prices)


def test_cached_tokens_are_billed_at_the_cached_price() -> None:
    prices = Prices(input=1_250_000, cached_input=125_000, output=10_000_000)
    assert (
        cost(Usage(input_tokens=1000, output_tokens=0, cached_tokens=800), prices) == 200 * 1.25 + 800 * 0.125
    )
    assert cost(Usage(input_tokens=1, output_tokens=0), prices) == 2  # 1.25 micro-units rounds up


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_parse_usd_round_trips(micros: int) -> None:
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), 1_000_000)
    assert parse_usd(f"{sign}{whole}.{fraction:06d}") == micros


@pytest.mark.parametrize("text", ["", "abc", "1.2345678", "1..2", "1e5"])
def test_parse_usd_refuses_non_amounts(text: str) -> None:
    with pytest.raises(ValueError):
        parse_usd(text)


@pytest.mark.parametrize(
    "text",
    [
        "９",  # fullwidth nine: str.isdigit() accepts it, int() reads it as 9
        "1２.5",
        "²",
        "٣",  # Arabic-Indic three
        "1.５",
        "\u3000 5",
        "1_000",
        "1,5",
        "Infinity",
        "NaN",
        ".",
        "-",
        "--1",
    ],
)
def test_parse_usd_takes_ascii_digits_only(text: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_usd(text)
    assert caught.value.code == "invalid_value"


def test_parse_usd_keeps_the_forms_it_always_took() -> None:
    assert parse_usd("12.50") == 12_500_000
    assert parse_usd("50") == 50_000_000
    assert parse_usd(" -1.25 ") == -1_250_000
    assert parse_usd("+.5") == 500_000
    assert parse_usd("0.000001") == 1


@pytest.mark.parametrize("text", ["1000000000.000001", "-1000000000.000001", "9" * 19, "9" * 5000])
def test_parse_usd_refuses_amounts_beyond_the_bound(text: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_usd(text)
    assert caught.value.code == "amount_out_of_range"
    assert parse_usd("1000000000") == MAX_AMOUNT == 10**15


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (True, "invalid_type"),
        (False, "invalid_type"),
        (1.9, "invalid_type"),
        (1.0, "invalid_type"),
        (None, "invalid_type"),
        ([1], "invalid_type"),
        (9.2e18, "invalid_type"),
        (9_200_000_000_000_000_000, "amount_out_of_range"),
        (MAX_AMOUNT + 1, "amount_out_of_range"),
        (-MAX_AMOUNT - 1, "amount_out_of_range"),
        ("９", "invalid_value"),
    ],
)
def test_amounts_from_json_are_integers_or_decimal_strings(value: object, code: str) -> None:
    with pytest.raises(AmountError) as caught:
        amount_from_json(value)
    assert caught.value.code == code


def test_amounts_from_json_in_range() -> None:
    assert amount_from_json(5) == 5  # integers are micro-units
    assert amount_from_json("5") == 5_000_000  # strings are USD
    assert amount_from_json(MAX_AMOUNT) == MAX_AMOUNT
    assert amount_from_json(-MAX_AMOUNT) == -MAX_AMOUNT
