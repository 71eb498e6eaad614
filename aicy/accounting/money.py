"""Money rules. Balances and costs are integers in micro-units of the account currency (1 unit = 1e-6 USD
by default); prices are micro-units per million tokens.

The one rounding rule: a request's cost is computed exactly as a sum of token × price products, then
divided by one million once, rounding up to the next micro-unit. So a request is never billed more than
one micro-unit above its exact price, and never below it.
"""

from __future__ import annotations

import re

from aicy.domain.models import Prices
from aicy.types import Usage

PER_MILLION = 1_000_000
MICROS_PER_USD = 1_000_000
MAX_AMOUNT = 10**15
"""The largest amount, either way, an operator may enter at once (top-up, adjustment, spend limit):
1e15 micro-units, one billion USD."""
MAX_PRICE = 10**12
"""The largest price of a model: 1e12 micro-units (one million USD) per million tokens."""


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


class AmountError(ValueError):
    """An amount an operator entered that cannot be taken; ``code`` is the API error code to answer with."""

    def __init__(self, message: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.code = code


_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")  # [0-9], not \d: ASCII digits only
_FORM = 'an integer number of micro-units (1 USD = 1000000) or a decimal string of USD such as "12.50"'


def check_amount(micros: int) -> int:
    if not -MAX_AMOUNT <= micros <= MAX_AMOUNT:
        usd = MAX_AMOUNT // MICROS_PER_USD
        raise AmountError(
            f"amounts are limited to {MAX_AMOUNT} micro-units ({usd} USD) either way", "amount_out_of_range"
        )
    return micros


def parse_usd(text: str) -> int:
    """'12.50' -> 12_500_000 micro-units, exactly (no float on the way): ASCII digits, an optional sign,
    at most six decimals, within ``MAX_AMOUNT``."""
    match = _DECIMAL.fullmatch(text.strip(" \t\r\n"))
    if match is None or not (match[2] or match[3]):
        raise AmountError(f"not an amount: {text!r}; expected {_FORM}")
    sign, whole, fraction = match[1], match[2], match[3] or ""
    if len(fraction) > 6:
        raise AmountError("amounts have at most 6 decimal places (one micro-unit)")
    if len(whole) > 20:  # far out of range already: no need to make a huge int of it
        return check_amount(MAX_AMOUNT + 1)
    micros = int(whole or "0") * MICROS_PER_USD + int(fraction.ljust(6, "0"))
    return check_amount(-micros if sign == "-" else micros)


def amount_from_json(value: object) -> int:
    """An amount as the admin API takes it: a JSON integer of micro-units or a decimal string of USD.
    Never a boolean or a float (``1.9`` is not silently 1 micro-unit), never beyond ``MAX_AMOUNT``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise AmountError(f"expected {_FORM}", "invalid_type")
    return parse_usd(value) if isinstance(value, str) else check_amount(value)
