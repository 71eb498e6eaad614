"""Turning pydantic validation errors and hand checks into OpenAI-shaped 400s that name the ``param``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from aicy.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)

_CODES = {
    "missing": "missing_required_parameter",
    "int_parsing": "invalid_type",
    "int_type": "invalid_type",
    "float_parsing": "invalid_type",
    "float_type": "invalid_type",
    "string_type": "invalid_type",
    "bool_type": "invalid_type",
    "bool_parsing": "invalid_type",
    "list_type": "invalid_type",
    "dict_type": "invalid_type",
    "model_type": "invalid_type",
    "greater_than_equal": "integer_below_min_value",
    "less_than_equal": "integer_above_max_value",
    "too_long": "array_above_max_length",
    "too_short": "array_below_min_length",
    "literal_error": "invalid_value",
    "enum": "invalid_value",
    # raised by aicy's own validators (PydanticCustomError), passed through as they are
    "invalid_type": "invalid_type",
    "invalid_value": "invalid_value",
    "amount_out_of_range": "amount_out_of_range",
    "string_above_max_length": "string_above_max_length",
}


def param_path(loc: Sequence[int | str]) -> str:
    """``('messages', 0, 'content')`` -> ``messages[0].content``; pydantic's union tags are dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_type_tag(part):
            break
        else:
            out += f".{part}" if out else part
    return out


def _is_type_tag(part: str) -> bool:
    return any(ch in part for ch in "[(-") or part in {"str", "int", "float", "bool", "list", "dict", "none"}


def parse_model(model: type[M], body: Any) -> M:
    """Validate ``body`` into ``model``; the first problem becomes a 400 naming its parameter."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_type")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc, model) from None


def _is_decimal_field(model: type[BaseModel] | None, loc: Sequence[int | str]) -> bool:
    field = model.model_fields.get(str(loc[0])) if model is not None and loc else None
    return field is not None and "float" in str(field.annotation)


def validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> InvalidRequest:
    first = exc.errors(include_url=False)[0]
    param = param_path(first["loc"])
    kind = first["type"]
    code = _CODES.get(kind, "invalid_value")
    if code.startswith("integer_") and _is_decimal_field(model, first["loc"]):
        code = code.replace("integer_", "decimal_")
    if kind == "missing":
        message = f"Missing required parameter: '{param}'."
    elif code == "invalid_type":
        message = f"Invalid type for '{param}': {first['msg']}."
    else:
        message = f"Invalid value for '{param}': {first['msg']}."
    return InvalidRequest(message, param=param or None, code=code)


def require(condition: bool, message: str, param: str, code: str = "invalid_value") -> None:
    if not condition:
        raise InvalidRequest(message, param=param, code=code)


def int_param(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """A whole-number query parameter from ``lo`` to ``hi``, or ``default`` when absent.

    Only ASCII digits are taken: ``str.isdigit`` also accepts '²' or '٣', which ``int`` then refuses
    (or, for '٣', reads as 3)."""
    text = query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 18 and lo <= int(text) <= hi):
        raise InvalidRequest(
            f"Invalid value for '{name}': expected an integer from {lo} to {hi}.",
            param=name,
            code="invalid_value",
        )
    return int(text)


def text_problem(value: str, max_length: int) -> str | None:
    """Why ``value`` cannot be stored as text of at most ``max_length`` characters, if it cannot."""
    if "\x00" in value:
        return "must not contain NUL characters (\\u0000)"
    if len(value) > max_length:
        return f"must be at most {max_length} characters long"
    return None


def stored_text(max_length: int) -> Callable[[str], str]:
    """A pydantic ``AfterValidator`` for text that goes into a column: no NUL (PostgreSQL refuses it in
    text) and at most ``max_length`` characters (the column's length), so a bad value is a 400 naming its
    parameter, not a 500 from the database."""

    def check(value: str) -> str:
        problem = text_problem(value, max_length)
        if problem is None:
            return value
        kind = "invalid_value" if "NUL" in problem else "string_above_max_length"
        raise PydanticCustomError(kind, problem)

    return check
