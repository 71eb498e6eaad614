from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from aicy.errors import InvalidRequest, UnsupportedValue
from aicy.protocol import chat
from aicy.types import (
    Event,
    Finish,
    GenerationRequest,
    Message,
    OutputFormat,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    Usage,
)

USER = {"role": "user", "content": "hi"}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [USER], **fields}


def parse_error(raw: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        chat.parse_request(raw)
    return info.value


def generation_error(messages: list[Any]) -> InvalidRequest:
    request = chat.parse_request({"model": "m", "messages": messages})
    with pytest.raises(InvalidRequest) as info:
        chat.to_generation(request)
    return info.value


# parse_request


def test_minimal_request_parses() -> None:
    request = chat.parse_request(body())
    assert request.model == "m"
    assert request.include_usage is False


def test_include_usage() -> None:
    assert chat.parse_request(body(stream=True, stream_options={"include_usage": True})).include_usage


def test_n_above_one_is_unsupported() -> None:
    err = parse_error(body(n=2))
    assert isinstance(err, UnsupportedValue)
    assert (err.param, err.code) == ("n", "unsupported_value")


def test_n_one_is_fine() -> None:
    assert chat.parse_request(body(n=1)).n == 1


def test_at_most_four_stop_strings() -> None:
    assert chat.parse_request(body(stop=["a", "b", "c", "d"])).stop == ["a", "b", "c", "d"]
    err = parse_error(body(stop=["a", "b", "c", "d", "e"]))
    assert (err.param, err.code) == ("stop", "array_above_max_length")


def test_json_schema_format_needs_json_schema() -> None:
    err = parse_error(body(response_format={"type": "json_schema"}))
    assert (err.param, err.code) == ("response_format.json_schema", "missing_required_parameter")


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        (body(max_tokens="many"), "max_tokens", "invalid_type"),
        (body(max_tokens=0), "max_tokens", "integer_below_min_value"),
        (body(stream="yes please"), "stream", "invalid_type"),
        (body(stop=3), "stop", "invalid_type"),
        (body(messages="hi"), "messages", "invalid_type"),
        (body(messages=[]), "messages", "array_below_min_length"),
        (body(response_format={"type": "xml"}), "response_format.type", "invalid_value"),
        (body(tools=[{"type": "function", "function": {}}]), "tools[0].function.name", None),
        ({"messages": [USER]}, "model", "missing_required_parameter"),
    ],
)
def test_invalid_fields_name_their_param(raw: dict[str, Any], param: str, code: str | None) -> None:
    err = parse_error(raw)
    assert err.param == param
    assert err.code == (code or "missing_required_parameter")


@pytest.mark.parametrize(
    ("message", "param", "code"),
    [
        ({"role": "robot", "content": "x"}, "messages[1].role", "invalid_value"),
        ({"content": "x"}, "messages[1].role", "missing_required_parameter"),
        ("just text", "messages[1]", "invalid_type"),
        ({"role": "tool", "content": "42"}, "messages[1].tool_call_id", "missing_required_parameter"),
        ({"role": "user", "content": 5}, "messages[1].content", "invalid_type"),
    ],
)
def test_bad_messages(message: Any, param: str, code: str) -> None:
    err = generation_error([USER, message])
    assert (err.param, err.code) == (param, code)


def test_image_part_is_refused_naming_the_part() -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    err = generation_error([{"role": "user", "content": content}])
    assert isinstance(err, UnsupportedValue)
    assert err.param == "messages[0].content[1]"
    assert "image_url" in err.message


def test_non_function_tool_is_refused() -> None:
    request = chat.parse_request(body(tools=[{"type": "web_search"}]))
    with pytest.raises(UnsupportedValue) as info:
        chat.to_generation(request)
    assert info.value.param == "tools[0].type"


# to_generation


def generation(**fields: Any) -> GenerationRequest:
    return chat.to_generation(chat.parse_request(body(**fields)))


def test_roles_and_content_parts() -> None:
    gen = generation(
        messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ]
    )
    assert gen.messages == [
        Message(role="system", content="be brief"),
        Message(role="system", content="ab"),
        Message(role="user", content="hi"),
        Message(role="assistant", content=""),
        Message(role="tool", content="42", tool_call_id="call_1"),
    ]


def test_max_completion_tokens_preferred_over_max_tokens() -> None:
    assert generation(max_tokens=10, max_completion_tokens=20).max_output_tokens == 20
    assert generation(max_tokens=10).max_output_tokens == 10
    assert generation().max_output_tokens is None


@pytest.mark.parametrize(
    ("stop", "expected"), [("END", ("END",)), (["a", "b"], ("a", "b")), (None, ()), ("", ())]
)
def test_stop(stop: Any, expected: tuple[str, ...]) -> None:
    assert generation(stop=stop).stop == expected


def test_sampling_and_tool_options_pass_through() -> None:
    gen = generation(
        temperature=0.5,
        top_p=0.9,
        seed=7,
        reasoning_effort="low",
        tool_choice="required",
        parallel_tool_calls=False,
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    )
    assert (gen.temperature, gen.top_p, gen.seed, gen.reasoning_effort) == (0.5, 0.9, 7, "low")
    assert gen.tool_choice == ToolChoice(mode="required")
    assert gen.parallel_tool_calls is False
    assert [(t.name, t.parameters) for t in gen.tools] == [("f", {"type": "object"})]
    assert generation().parallel_tool_calls is True


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        (None, OutputFormat()),
        ({"type": "text"}, OutputFormat()),
        ({"type": "json_object"}, OutputFormat(type="json_object")),
        (
            {
                "type": "json_schema",
                "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": True},
            },
            OutputFormat(type="json_schema", name="p", schema={"type": "object"}, strict=True),
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "p"}},
            OutputFormat(type="json_schema", name="p", schema={}),
        ),
    ],
)
def test_response_format(response_format: Any, expected: OutputFormat) -> None:
    assert generation(response_format=response_format).output_format == expected


def test_assistant_tool_calls() -> None:
    gen = generation(
        messages=[
            USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                    {"type": "function", "function": {"name": "g"}},
                ],
            },
        ]
    )
    first, second = gen.messages[1].tool_calls
    assert first == ToolCall(id="call_1", name="f", arguments='{"a":1}')
    assert second.id.startswith("call_")
    assert (second.name, second.arguments) == ("g", "")


def test_tool_call_without_function_name_is_refused() -> None:
    err = generation_error([{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}])
    assert err.param == "messages[0].tool_calls[0]"


# ChatEncoder


def run(encoder: chat.ChatEncoder, events: list[Event]) -> list[dict[str, Any]]:
    chunks = encoder.start()
    for event in events:
        chunks += encoder.feed(event)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return chunks


TEXT_EVENTS: list[Event] = [TextDelta("Hel"), TextDelta("lo"), Finish("stop"), Usage(5, 2)]


def test_text_stream_without_usage() -> None:
    encoder = chat.ChatEncoder("m")
    chunks = run(encoder, TEXT_EVENTS)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert all("usage" not in c for c in chunks)
    assert {c["id"] for c in chunks} == {encoder.id}
    assert encoder.id.startswith("chatcmpl-")
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m" for c in chunks)


def test_text_stream_with_usage() -> None:
    chunks = run(chat.ChatEncoder("m", include_usage=True), TEXT_EVENTS)
    *body_chunks, last = chunks
    assert len(body_chunks) == 4
    assert all(c["usage"] is None and len(c["choices"]) == 1 for c in body_chunks)
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 5
    assert last["usage"]["completion_tokens"] == 2
    assert last["usage"]["total_tokens"] == 7


def test_role_is_sent_exactly_once_even_without_explicit_start() -> None:
    encoder = chat.ChatEncoder("m")
    chunks = encoder.feed(TextDelta("a")) + encoder.feed(TextDelta("b")) + encoder.feed(Finish("stop"))
    assert ["role" in c["choices"][0]["delta"] for c in chunks] == [True, False, False, False]


def test_tool_call_stream() -> None:
    events: list[Event] = [
        ToolCallStart(0, "call_a", "get_weather"),
        ToolCallDelta(0, '{"city":'),
        ToolCallDelta(0, '"Paris"}'),
        ToolCallStart(1, "call_b", "get_time"),
        ToolCallDelta(1, "{}"),
        Finish("tool_calls"),
    ]
    encoder = chat.ChatEncoder("m")
    chunks = run(encoder, events)[1:]
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[:-1]]
    assert calls[0] == {
        "index": 0,
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert calls[1] == {"index": 0, "function": {"arguments": '{"city":'}}
    assert calls[2] == {"index": 0, "function": {"arguments": '"Paris"}'}}
    assert (calls[3]["index"], calls[3]["id"], calls[3]["function"]["name"]) == (1, "call_b", "get_time")
    assert calls[4] == {"index": 1, "function": {"arguments": "{}"}}
    finish = chunks[-1]["choices"][0]
    assert finish == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}

    message = encoder.completion()["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    ChatCompletion.model_validate(encoder.completion())


def test_completion_shape() -> None:
    encoder = chat.ChatEncoder("m")
    events: list[Event] = [TextDelta("Hel"), TextDelta("lo"), Finish("length"), Usage(5, 2, cached_tokens=1)]
    for event in events:
        encoder.feed(event)
    completion = encoder.completion()
    ChatCompletion.model_validate(completion)
    assert completion["id"] == encoder.id
    assert completion["object"] == "chat.completion"
    assert completion["model"] == "m"
    assert isinstance(completion["created"], int)
    [choice] = completion["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "length"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Hello"
    assert "tool_calls" not in choice["message"]
    usage = completion["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (5, 2, 7)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 1


def test_empty_completion_defaults() -> None:
    completion = chat.ChatEncoder("m").completion()
    assert completion["choices"][0]["message"]["content"] == ""
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"]["total_tokens"] == 0
