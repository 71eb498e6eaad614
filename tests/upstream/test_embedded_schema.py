"""The embedded engine's checks of JSON schemas before they become llama.cpp grammars (pure functions)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aicy.errors import InvalidRequest
from aicy.types import FunctionTool, GenerationRequest, Message, OutputFormat, ToolChoice
from aicy.upstream.embedded import (
    MAX_OPTIONAL_PROPERTIES,
    MAX_SCHEMA_COUNT,
    MAX_SCHEMA_SPAN,
    check_output_format,
    check_structured_output,
    grammar_for,
)


def _refusal(schema: Any, param: str = "response_format") -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        check_output_format(OutputFormat("json_schema", schema=schema), param)
    error = caught.value
    assert error.status == 400
    assert error.param == param
    assert error.code == "invalid_json_schema"
    return error


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "array", "minItems": 1_000_000_000}, "'minItems' is 1000000000"),
        ({"type": "array", "items": {"type": "integer"}, "maxItems": 10**12}, "'maxItems' is"),
        ({"type": "string", "minLength": 10**9}, str(MAX_SCHEMA_COUNT)),
        ({"type": "string", "maxLength": 5000}, f"at most {MAX_SCHEMA_SPAN} optional"),
        ({"type": "array", "items": {}, "minItems": 3, "maxItems": 2}, "below the minimum"),
        ({"type": "array", "minItems": -1}, "whole numbers"),
        ({"type": "array", "minItems": 2.5}, "whole numbers"),
        ({"type": "array", "minItems": "5"}, "whole numbers"),
        ({"type": "string", "pattern": "^a{1000000000}$"}, "quantifier"),
        ({"type": "string", "pattern": "^a{1_000_000_000}$"}, "quantifier"),  # int() reads underscores
        ({"type": "string", "pattern": "^a{0,100000}$"}, "quantifier"),
        ({"const": "a\u0000b"}, "U+0000"),
        ({"enum": ["x", "\u0000"]}, "U+0000"),
        (
            {"type": "object", "properties": {"a\u0000": {"type": "string"}}, "required": ["a\u0000"]},
            "U+0000",
        ),
        ({"type": "string", "pattern": "^\\x00$"}, "U+0000"),
        (
            {"type": "string", "pattern": "^[^\\x00]*$"},
            "U+0000",
        ),  # llama.cpp takes it; rule kept simple
        ({"type": "nonsense"}, "Unrecognized schema"),
        ({"$ref": "#/$defs/missing"}, "Invalid JSON schema"),
        ({"$ref": "https://example.com/schema.json"}, "Invalid JSON schema"),
        (
            {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(150)}},
            f"at most {MAX_OPTIONAL_PROPERTIES}",
        ),
    ],
)
def test_schemas_that_cannot_become_a_grammar_are_refused(schema: Any, says: str) -> None:
    started = time.monotonic()
    error = _refusal(schema)
    assert says in error.message
    assert time.monotonic() - started < 1.0  # refused without building anything big


def test_the_repetition_budget_covers_the_whole_schema() -> None:
    """Each count is allowed alone; together they would make a grammar of many megabytes."""
    many = {
        f"list{i}": {"type": "array", "items": {"type": "integer"}, "minItems": 10_000} for i in range(50)
    }
    schema = {"type": "object", "properties": many, "required": list(many)}
    assert "grammar of more than" in _refusal(schema, "text.format").message


def test_the_path_of_the_bad_keyword_is_named() -> None:
    schema = {"type": "object", "properties": {"tags": {"type": "array", "maxItems": 10**6}}}
    assert "properties.tags" in _refusal(schema).message


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": MAX_SCHEMA_SPAN + 1},
        {"type": "array", "items": {"type": "integer"}, "minItems": MAX_SCHEMA_COUNT},
        {"type": "string", "minLength": 2, "maxLength": 200},
        {"type": "string", "pattern": "^[a-z]{2,8}-\\d{3}$"},
        {"type": "object", "properties": {"minItems": {"type": "integer"}}, "required": ["minItems"]},
        {
            "type": "object",
            "properties": {f"p{i}": {"type": "integer"} for i in range(MAX_OPTIONAL_PROPERTIES)},
        },
    ],
)
def test_ordinary_schemas_pass(schema: Any) -> None:
    check_output_format(OutputFormat("json_schema", schema=schema), "text.format")
    assert grammar_for(OutputFormat("json_schema", schema=schema))


def test_text_and_json_object_formats_need_no_check() -> None:
    check_output_format(OutputFormat())
    check_output_format(OutputFormat("json_object"))


def _request(tools: list[FunctionTool], choice: ToolChoice | None, fmt: OutputFormat) -> GenerationRequest:
    return GenerationRequest(
        model="m",
        messages=[Message(role="user", content="hi")],
        output_format=fmt,
        tools=tuple(tools),
        tool_choice=choice,
    )


def test_forced_tool_parameters_are_checked_with_their_param() -> None:
    good = FunctionTool("good", None, {"type": "object", "properties": {}})
    bad = FunctionTool("bad", None, {"type": "array", "minItems": 10**9})
    for api, param in (("chat", "tools[1].function.parameters"), ("responses", "tools[1].parameters")):
        with pytest.raises(InvalidRequest) as caught:
            check_structured_output(_request([good, bad], ToolChoice("required"), OutputFormat()), api)  # type: ignore[arg-type]
        assert caught.value.param == param and caught.value.code == "invalid_json_schema"
    # not forced: the tools are only described in the prompt, no grammar is built
    check_structured_output(_request([good, bad], ToolChoice("auto"), OutputFormat()), "chat")
    check_structured_output(_request([good, bad], ToolChoice("function", "good"), OutputFormat()), "chat")


def test_output_format_param_follows_the_api() -> None:
    fmt = OutputFormat("json_schema", schema={"type": "string", "maxLength": 10**6})
    for api, param in (("chat", "response_format"), ("responses", "text.format")):
        with pytest.raises(InvalidRequest) as caught:
            check_structured_output(_request([], None, fmt), api)  # type: ignore[arg-type]
        assert caught.value.param == param
