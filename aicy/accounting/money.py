"""Money rules. Balances and costs are integers in micro-units of the account currency (1 unit = 1e-6 USD
by default); prices are micro-units per million tokens.

The one rounding rule: a request's cost is computed exactly as a sum of token × price products, then
divided by one million once, rounding up to the next micro-unit. So a request is never billed more than
one micro-unit above its exact price, and never below it.
"""

from __future__ import annotations

from aicy.domain.models import Prices
from aicy.types import Usage

PER_MILLION = 1_000_000
MICROS_PER_USD = 1_000_000


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def cost(usage: Usage, prices: Prices) -> int:
    """Input tokens less cached at the input price, cached at the cached price, output (reasoning included)
    at the output price. ``usage.input_tokens`` includes the cached tokens, as OpenAI reports them."""
    cached = min(max(usage.cached_tokens, 0), max(usage.input_tokens, 0))
    fresh = max(usage.input_tokens, 0) - cached
    total = fresh * prices.input + cached * prices.cached_input + max(usage.output_tokens, 0) * prices.output
    return _ceil_div(total, PER_MILLION)


def worst_case(input_tokens: int, output_tokens: int, prices: Prices) -> int:
    """What to reserve: every input token at the (higher of the) input prices, every output token allowed."""
    top_input = max(prices.input, prices.cached_input)
    return _ceil_div(input_tokens * top_input + output_tokens * prices.output, PER_MILLION)


def parse_usd(text: str) -> int:
    """'12.50' -> 12_500_000 micro-units, exactly (no float on the way)."""
    sign = -1 if text.strip().startswith("-") else 1
    whole, _, fraction = text.strip().lstrip("+-").partition(".")
    if not (whole or fraction) or not (whole or "0").isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not an amount: {text!r}")
    if len(fraction) > 6:
        raise ValueError("amounts have at most 6 decimal places (one micro-unit)")
    return sign * (int(whole or "0") * MICROS_PER_USD + int(fraction.ljust(6, "0") or "0"))
