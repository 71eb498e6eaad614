"""Property tests of the price arithmetic."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicy.accounting.money import cost, parse_usd, worst_case
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
