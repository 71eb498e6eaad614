from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from aicy.errors import InvalidRequest
from aicy.protocol.validation import int_param, param_path, parse_model, require


class _Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class _Body(BaseModel):
    messages: list[_Message]
    n: int = Field(1, ge=1, le=4)
    temperature: float = Field(1.0, ge=0, le=2)
    tags: list[str] = Field(default_factory=list, max_length=2)
    stop: str | list[str] | None = None


def _error(body: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_model(_Body, body)
    return info.value


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("messages", 0, "content"), "messages[0].content"),
        (("tools", 1, "function", "name"), "tools[1].function.name"),
        (("grid", 0, 1), "grid[0][1]"),
        (("model",), "model"),
        (("stop", "str"), "stop"),
        (("stop", "list[str]", 2), "stop"),
        (("n", "function-after[check(), int]"), "n"),
        ((), ""),
    ],
)
def test_param_path(loc: tuple[int | str, ...], expected: str) -> None:
    assert param_path(loc) == expected


def test_valid_body_parses() -> None:
    body = parse_model(_Body, {"messages": [{"role": "user", "content": "hi"}], "stop": ["a"]})
    assert body.messages[0].content == "hi"
    assert body.stop == ["a"]


def test_wrong_type_names_nested_param() -> None:
    err = _error({"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": 5}]})
    assert err.param == "messages[1].content"
    assert err.code == "invalid_type"
    assert err.message.startswith("Invalid type for 'messages[1].content':")
    assert err.status == 400
    assert err.body()["error"]["type"] == "invalid_request_error"


def test_missing_parameter_message() -> None:
    err = _error({"messages": [{"role": "user"}]})
    assert err.param == "messages[0].content"
    assert err.code == "missing_required_parameter"
    assert err.message == "Missing required parameter: 'messages[0].content'."


def test_missing_top_level_parameter() -> None:
    err = _error({})
    assert (err.param, err.code) == ("messages", "missing_required_parameter")


def test_union_tag_is_not_part_of_param() -> None:
    err = _error({"messages": [], "stop": 7})
    assert err.param == "stop"
    assert err.code == "invalid_type"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"n": 0}, "n", "integer_below_min_value"),
        ({"n": 5}, "n", "integer_above_max_value"),
        ({"n": "two"}, "n", "invalid_type"),
        ({"tags": ["a", "b", "c"]}, "tags", "array_above_max_length"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"messages": "hello"}, "messages", "invalid_type"),
    ],
)
def test_codes(body: dict[str, object], param: str, code: str) -> None:
    err = _error({"messages": [], **body})
    assert (err.param, err.code) == (param, code)
    if code != "invalid_type":
        assert err.message.startswith(f"Invalid value for '{param}':")


def test_float_above_max_uses_decimal_code() -> None:
    err = _error({"messages": [], "temperature": 3})
    assert err.param == "temperature"
    assert err.code == "decimal_above_max_value"


@pytest.mark.parametrize("body", [[1, 2], "text", None, 3])
def test_non_object_body(body: object) -> None:
    err = _error(body)
    assert err.param is None
    assert err.code == "invalid_type"


def test_require() -> None:
    require(True, "never", "x")
    with pytest.raises(InvalidRequest) as info:
        require(False, "Bad stop.", "stop")
    assert (info.value.message, info.value.param, info.value.code) == ("Bad stop.", "stop", "invalid_value")
    with pytest.raises(InvalidRequest) as info:
        require(False, "Too many.", "stop", "array_above_max_length")
    assert info.value.code == "array_above_max_length"


@pytest.mark.parametrize(
    "text", ["²", "٣", "９", "1²", "-1", "+5", " 5", "5 ", "", "1e3", "0x10", "1" * 19, "101", "0"]
)
def test_int_param_takes_ascii_digits_in_range_only(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        int_param({"limit": text}, "limit", 20, 1, 100)
    assert caught.value.param == "limit" and caught.value.code == "invalid_value"
    assert "from 1 to 100" in caught.value.message


def test_int_param_reads_numbers_and_defaults() -> None:
    assert int_param({}, "limit", 20, 1, 100) == 20
    assert int_param({"limit": "7"}, "limit", 20, 1, 100) == 7
    assert int_param({"limit": "100"}, "limit", 20, 1, 100) == 100
    assert int_param({"limit": "007"}, "limit", 20, 1, 100) == 7
