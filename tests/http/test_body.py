"""The body reader's depth check, as a pure function (the server tests are in test_limits.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from aicy.errors import InvalidRequest
from aicy.http.body import MAX_JSON_DEPTH, check_depth, nesting_depth


def nested(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("x", 0), ({}, 1), ([], 1), ([1, [2]], 2), ({"a": {"b": []}, "c": 1}, 3), (nested(300), 300)],
)
def test_nesting_depth(value: Any, depth: int) -> None:
    assert nesting_depth(value) == depth


def test_a_body_at_the_limit_passes_and_one_level_more_is_refused() -> None:
    ok = {"model": "m", "text": {"format": nested(MAX_JSON_DEPTH - 2)}}
    check_depth(ok, orjson.dumps(ok))
    deep = {"model": "m", "tools": [1], "text": {"format": nested(MAX_JSON_DEPTH - 1)}}
    with pytest.raises(InvalidRequest) as caught:
        check_depth(deep, orjson.dumps(deep))
    error = caught.value
    assert (error.status, error.code, error.param) == (400, "nesting_too_deep", "text")
    assert f"{MAX_JSON_DEPTH + 1} levels" in error.message and str(MAX_JSON_DEPTH) in error.message


def test_few_brackets_skip_the_walk() -> None:
    """The raw body bounds the depth: with no more brackets than the limit, the parsed body is not walked."""
    body = nested(MAX_JSON_DEPTH + 5)
    check_depth(body, b"{}")  # a lie about the raw body shows that only the count was looked at
    with pytest.raises(InvalidRequest):
        check_depth(body, orjson.dumps(body))


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    body = {"messages": [{"role": "user", "content": "[" * 5000}]}
    check_depth(body, orjson.dumps(body))


def test_a_top_level_array_names_no_param() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_depth(nested(200))
    assert caught.value.param is None
