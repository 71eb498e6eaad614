from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from aicy.errors import InvalidRequest, UpstreamError
from aicy.protocol import chat
from aicy.protocol.upstream_responses import (
    ResponsesStreamDecoder,
    response_events,
    responses_request_body,
)
from aicy.types import (
    Finish,
    FunctionTool,
    GenerationRequest,
    Message,
    OutputFormat,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    Usage,
)
from tests.protocol.goldens import (
    STREAM_EVENT,
    assert_golden,
    check_chat_chunks,
    decode_responses,
    read_json,
    read_sse,
    sdk_round_trip,
    to_chat_completion,
    to_chat_stream,
)

WEATHER = FunctionTool(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    strict=True,
)
PARIS = ToolCall("call_a", "get_weather", '{"city":"Paris"}')
TOKYO = ToolCall("call_b", "get_weather", '{"city":"Tokyo"}')
WEATHER_CALL = "call_Xb7kQ2mN9pLr4sT1vW6yZ0aC"  # the call id in the recorded Responses stream


def request(**fields: Any) -> GenerationRequest:
    return GenerationRequest(model="customer-name", messages=[Message("user", "hi")], **fields)


def body(**fields: Any) -> dict[str, Any]:
    return responses_request_body(request(**fields), "upstream-name", stream=False)


def user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


# responses_request_body


def test_minimal_body_is_stateless() -> None:
    assert body() == {"model": "upstream-name", "input": [user_item("hi")], "store": False, "stream": False}
    assert responses_request_body(request(), "m", stream=True)["stream"] is True


def test_multi_turn_tool_conversation() -> None:
    messages = [
        Message("system", "Be brief."),
        Message("system", "Use metric units."),
        Message("user", "Weather in Paris and Tokyo?"),
        Message("assistant", "Checking both.", tool_calls=(PARIS, TOKYO), reasoning="Two calls."),
        Message("tool", "18C, cloudy", tool_call_id="call_a"),
        Message("tool", "25C, sunny", tool_call_id="call_b"),
        Message("assistant", "Paris 18C and cloudy; Tokyo 25C and sunny."),
        Message("system", "Answer in French from now on."),
        Message("user", "Thanks!"),
    ]
    sent = responses_request_body(GenerationRequest("m", messages), "up", stream=True)
    assert sent["instructions"] == "Be brief.\n\nUse metric units."
    assert sent["input"] == [
        user_item("Weather in Paris and Tokyo?"),
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking both.", "annotations": []}],
        },
        {
            "type": "function_call",
            "call_id": "call_a",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {
            "type": "function_call",
            "call_id": "call_b",
            "name": "get_weather",
            "arguments": '{"city":"Tokyo"}',
        },
        {"type": "function_call_output", "call_id": "call_a", "output": "18C, cloudy"},
        {"type": "function_call_output", "call_id": "call_b", "output": "25C, sunny"},
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "Paris 18C and cloudy; Tokyo 25C and sunny.",
                    "annotations": [],
                }
            ],
        },
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "Answer in French from now on."}],
        },
        user_item("Thanks!"),
    ]


def test_chat_client_conversation_to_responses_upstream() -> None:
    """A Chat client's tool conversation, parsed by the Chat parser, arrives as Responses items."""
    client = chat.parse_request(
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Tokyo?"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "Two calls.",
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": "18C, cloudy"},
                {"role": "tool", "tool_call_id": "call_b", "content": "25C, sunny"},
                {"role": "assistant", "content": "Paris 18C; Tokyo 25C."},
                {"role": "user", "content": "Thanks!"},
            ],
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
            },
            "reasoning_effort": "high",
            "max_completion_tokens": 800,
            "temperature": 0.3,
            "user": "u-1",
            "prompt_cache_key": "thread-1",
        }
    )
    sent = responses_request_body(chat.to_generation(client), "gpt-5.4", stream=True)
    assert sent == {
        "model": "gpt-5.4",
        "instructions": "Be brief.",
        "input": [
            user_item("Weather in Paris and Tokyo?"),
            {
                "type": "function_call",
                "call_id": "call_a",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "call_b",
                "name": "get_weather",
                "arguments": '{"city":"Tokyo"}',
            },
            {"type": "function_call_output", "call_id": "call_a", "output": "18C, cloudy"},
            {"type": "function_call_output", "call_id": "call_b", "output": "25C, sunny"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Paris 18C; Tokyo 25C.", "annotations": []}],
            },
            user_item("Thanks!"),
        ],
        "tools": [
            {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}
        ],
        "parallel_tool_calls": True,
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {
            "format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}
        },
        "reasoning": {"effort": "high"},
        "max_output_tokens": 800,
        "temperature": 0.3,
        "user": "u-1",
        "prompt_cache_key": "thread-1",
        "store": False,
        "stream": True,
    }


def test_no_leading_system_means_no_instructions() -> None:
    messages = [Message("user", "hi"), Message("system", "Be brief.")]
    sent = responses_request_body(GenerationRequest("m", messages), "up", stream=False)
    assert "instructions" not in sent
    assert sent["input"][1]["role"] == "developer"


def test_empty_assistant_turn_is_kept() -> None:
    [item] = responses_request_body(GenerationRequest("m", [Message("assistant")]), "up", stream=False)[
        "input"
    ]
    assert item == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "", "annotations": []}],
    }


def test_tools_are_flat() -> None:
    sent = body(tools=(WEATHER, FunctionTool("ping")), parallel_tool_calls=False)
    assert sent["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": WEATHER.parameters,
            "strict": True,
        },
        # Responses reads a missing strict as true; a Chat client that did not set it meant false
        {
            "type": "function",
            "name": "ping",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        },
    ]
    assert sent["parallel_tool_calls"] is False
    assert "parallel_tool_calls" not in body()


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice("auto"), "auto"),
        (ToolChoice("none"), "none"),
        (ToolChoice("required"), "required"),
        (ToolChoice("function", "get_weather"), {"type": "function", "name": "get_weather"}),
    ],
)
def test_tool_choice_is_flat(choice: ToolChoice, wire: Any) -> None:
    assert body(tools=(WEATHER,), tool_choice=choice)["tool_choice"] == wire


@pytest.mark.parametrize(
    ("fmt", "wire"),
    [
        (OutputFormat(), None),
        (OutputFormat("json_object"), {"format": {"type": "json_object"}}),
        (
            OutputFormat("json_schema", "person", {"type": "object"}, False),
            {
                "format": {
                    "type": "json_schema",
                    "name": "person",
                    "schema": {"type": "object"},
                    "strict": False,
                }
            },
        ),
    ],
)
def test_text_format_is_flat(fmt: OutputFormat, wire: Any) -> None:
    assert body(output_format=fmt).get("text") == wire


@pytest.mark.parametrize(
    ("effort", "summary", "wire"),
    [
        (None, None, None),
        ("low", None, {"effort": "low"}),
        (None, "auto", {"summary": "auto"}),
        ("xhigh", "detailed", {"effort": "xhigh", "summary": "detailed"}),
    ],
)
def test_reasoning(effort: str | None, summary: str | None, wire: Any) -> None:
    assert body(reasoning_effort=effort, reasoning_summary=summary).get("reasoning") == wire


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_output_tokens", 16),
        ("temperature", 0.0),
        ("top_p", 0.1),
        ("user", "end-user-7"),
        ("prompt_cache_key", "thread-9"),
    ],
)
def test_optional_fields_only_when_set(field: str, value: Any) -> None:
    assert body(**{field: value})[field] == value
    assert field not in body()


@pytest.mark.parametrize(
    ("field", "value"),
    [("seed", 0), ("stop", ("END",)), ("presence_penalty", 0.0), ("frequency_penalty", 1.0)],
)
def test_parameters_responses_cannot_express_are_refused(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        body(**{field: value})
    assert (info.value.status, info.value.param, info.value.code) == (400, field, "unsupported_parameter")


# ResponsesStreamDecoder on recorded streams


def test_reasoning_text_and_function_call_stream() -> None:
    events = decode_responses(read_sse("responses_reasoning_text_tool.sse"))
    assert events == [
        ReasoningDelta("**Checking the weather**\n\n"),
        ReasoningDelta("The user wants"),
        ReasoningDelta(" Paris weather."),
        ReasoningDelta("\n\n"),  # between summary parts 0 and 1
        ReasoningDelta("**Calling the tool**\n\n"),
        ReasoningDelta("I'll call get_weather."),
        TextDelta("Let me check"),
        TextDelta(" the weather"),
        TextDelta(" in Paris."),
        ToolCallStart(0, WEATHER_CALL, "get_weather"),
        ToolCallDelta(0, '{"city":'),
        ToolCallDelta(0, '"Paris"}'),
        Finish("tool_calls"),
        Usage(412, 96, cached_tokens=384, reasoning_tokens=64),
    ]


def test_incomplete_stream() -> None:
    events = decode_responses(read_sse("responses_incomplete.sse"))
    assert (
        "".join(e.text for e in events if isinstance(e, TextDelta)) == "Once upon a time, in a quiet village"
    )
    assert events[-2:] == [Finish("length"), Usage(22, 16)]


def test_failed_stream_raises_with_the_upstream_code() -> None:
    decoder = ResponsesStreamDecoder()
    *before, failed = read_sse("responses_failed.sse")
    assert [e for event in before for e in decoder.feed(event)] == []
    with pytest.raises(UpstreamError) as info:
        decoder.feed(failed)
    assert (info.value.status, info.value.type, info.value.code) == (
        502,
        "upstream_error",
        "context_length_exceeded",
    )
    assert info.value.message.startswith("Your input exceeds the context window")


def test_recorded_responses_streams_are_valid_sdk_events() -> None:
    for name in (
        "responses_reasoning_text_tool.sse",
        "responses_incomplete.sse",
        "responses_parallel_tools.sse",
    ):
        for event in read_sse(name):
            STREAM_EVENT.validate_python(event)
    # the live API puts codes such as context_length_exceeded in response.failed; the SDK's enum lacks them
    *before, _failed = read_sse("responses_failed.sse")
    for event in before:
        STREAM_EVENT.validate_python(event)


# ResponsesStreamDecoder rules


def completed(status: str = "completed", **response: Any) -> dict[str, Any]:
    kind = {"completed": "response.completed", "incomplete": "response.incomplete"}[status]
    return {"type": kind, "response": {"status": status, **response}}


def call_added(item_id: str, output_index: int, call_id: str | None = "call_1") -> dict[str, Any]:
    item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": "f", "arguments": ""}
    return {"type": "response.output_item.added", "output_index": output_index, "item": item}


def test_arguments_only_in_the_done_item_are_sent_once() -> None:
    decoder = ResponsesStreamDecoder()
    done = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":1}'}
    assert decoder.feed(call_added("fc_1", 0)) == [ToolCallStart(0, "call_1", "f")]
    assert decoder.feed({"type": "response.output_item.done", "output_index": 0, "item": done}) == [
        ToolCallDelta(0, '{"a":1}')
    ]


def test_done_item_does_not_repeat_streamed_arguments() -> None:
    decoder = ResponsesStreamDecoder()
    decoder.feed(call_added("fc_1", 0))
    delta = {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 0,
        "delta": "{}",
    }
    assert decoder.feed(delta) == [ToolCallDelta(0, "{}")]
    done = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    assert decoder.feed({"type": "response.output_item.done", "output_index": 0, "item": done}) == []


def test_function_calls_are_numbered_in_order_and_found_by_output_index() -> None:
    decoder = ResponsesStreamDecoder()
    decoder.feed({"type": "response.output_item.added", "output_index": 0, "item": {"type": "message"}})
    assert decoder.feed(call_added("fc_a", 1, "call_a")) == [ToolCallStart(0, "call_a", "f")]
    [start] = decoder.feed(call_added("fc_b", 2, "call_b"))
    assert start == ToolCallStart(1, "call_b", "f")
    by_index = {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{"}
    assert decoder.feed(by_index) == [ToolCallDelta(1, "{")]


def test_missing_call_id_is_generated() -> None:
    [start] = ResponsesStreamDecoder().feed(call_added("fc_a", 0, None))
    assert isinstance(start, ToolCallStart) and start.id.startswith("call_")


def test_a_new_reasoning_item_after_text_gets_no_separator() -> None:
    decoder = ResponsesStreamDecoder()

    def summary(item: str, index: int, text: str) -> dict[str, Any]:
        return {
            "type": "response.reasoning_summary_text.delta",
            "item_id": item,
            "output_index": 0,
            "summary_index": index,
            "delta": text,
        }

    assert decoder.feed(summary("rs_1", 0, "a")) == [ReasoningDelta("a")]
    assert decoder.feed({"type": "response.output_text.delta", "delta": "b"}) == [TextDelta("b")]
    assert decoder.feed(summary("rs_2", 0, "c")) == [ReasoningDelta("c")]


def test_raw_reasoning_text() -> None:
    event = {"type": "response.reasoning_text.delta", "item_id": "rs_1", "content_index": 0, "delta": "hm"}
    assert ResponsesStreamDecoder().feed(event) == [ReasoningDelta("hm")]


def test_completed_without_calls_is_stop_and_usage_is_optional() -> None:
    decoder = ResponsesStreamDecoder()
    assert decoder.feed(completed(usage=None)) == [Finish("stop")]
    assert decoder.feed(completed()) == []  # Finish exactly once
    assert decoder.close() == []


@pytest.mark.parametrize(
    ("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter")]
)
def test_incomplete_reasons(reason: str, finish: str) -> None:
    event = completed("incomplete", incomplete_details={"reason": reason})
    assert ResponsesStreamDecoder().feed(event) == [Finish(finish)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "event",
    [
        {
            "type": "error",
            "sequence_number": 2,
            "error": {
                "type": "insufficient_quota",
                "code": "credit_balance_exhausted",
                "message": "No credits.",
                "param": None,
            },
        },
        {
            "type": "error",
            "sequence_number": 2,
            "code": "credit_balance_exhausted",
            "message": "No credits.",
            "param": None,
        },
    ],
    ids=["nested", "flat"],
)
def test_error_events_raise(event: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError) as info:
        ResponsesStreamDecoder().feed(event)
    assert (info.value.code, info.value.message) == ("credit_balance_exhausted", "No credits.")


def test_unknown_events_are_ignored() -> None:
    decoder = ResponsesStreamDecoder()
    for kind in ("keepalive", "response.web_search_call.searching", "response.output_text.annotation.added"):
        assert decoder.feed({"type": kind, "sequence_number": 1}) == []


def test_stream_cut_before_the_terminal_event_is_an_upstream_error() -> None:
    decoder = ResponsesStreamDecoder()
    decoder.feed({"type": "response.output_text.delta", "delta": "par"})
    with pytest.raises(UpstreamError):
        decoder.close()


# response_events


def test_response_object_events_in_output_order() -> None:
    events = response_events(read_json("response_reasoning_text_tool.json"))
    assert events == [
        ReasoningDelta(
            "**Checking the weather**\n\nThe user wants Paris weather."
            "\n\n**Calling the tool**\n\nI'll call get_weather."
        ),
        TextDelta("Let me check the weather in Paris."),
        ToolCallStart(0, WEATHER_CALL, "get_weather"),
        ToolCallDelta(0, '{"city":"Paris"}'),
        Finish("tool_calls"),
        Usage(412, 96, cached_tokens=384, reasoning_tokens=64),
    ]


def test_incomplete_response_object() -> None:
    message = {"type": "message", "content": [{"type": "refusal", "refusal": "No."}]}
    body = {
        "status": "incomplete",
        "incomplete_details": {"reason": "content_filter"},
        "output": [message],
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    assert response_events(body) == [TextDelta("No."), Finish("content_filter"), Usage(5, 1)]


def test_failed_response_object_raises() -> None:
    with pytest.raises(UpstreamError) as info:
        response_events(
            {"status": "failed", "error": {"code": "server_error", "message": "oops"}, "output": []}
        )
    assert (info.value.code, info.value.message) == ("server_error", "oops")


# golden translations: a Responses upstream answering a Chat client


def test_golden_reasoning_text_tool_stream_to_chat() -> None:
    chunks = to_chat_stream(decode_responses(read_sse("responses_reasoning_text_tool.sse")), "gpt-5.4")
    completion = check_chat_chunks(chunks).get_final_completion()
    message = completion.choices[0].message
    assert message.content == "Let me check the weather in Paris."
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 384
    assert_golden("responses_reasoning_text_tool.to_chat.json", chunks)


def test_golden_incomplete_stream_to_chat() -> None:
    chunks = to_chat_stream(decode_responses(read_sse("responses_incomplete.sse")), "gpt-4.1-mini")
    snapshot = check_chat_chunks(chunks).current_completion_snapshot
    assert snapshot.choices[0].message.content == "Once upon a time, in a quiet village"
    assert snapshot.choices[0].finish_reason == "length"
    assert_golden("responses_incomplete.to_chat.json", chunks)


def test_sdk_accumulator_sees_each_tool_call_once() -> None:
    """The SDK's ChatCompletionStreamState merges deltas by index: repeated ids or names would double up."""
    chunks = to_chat_stream(decode_responses(read_sse("responses_parallel_tools.sse")), "gpt-5.4")
    completion = check_chat_chunks(chunks).get_final_completion()
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.id, c.type, c.function.name, c.function.arguments) for c in calls] == [
        ("call_Pq3rS8tU1vW4xY7zA0bC2dE5", "function", "get_weather", '{"city":"Paris"}'),
        ("call_Fg6hJ9kL2mN5pQ8rS1tU4vW7", "function", "get_weather", '{"city":"Tokyo"}'),
    ]
    assert completion.choices[0].message.role == "assistant"
    assert_golden("responses_parallel_tools.to_chat.json", chunks)


def test_golden_response_object_to_chat_completion() -> None:
    completion = to_chat_completion(
        response_events(read_json("response_reasoning_text_tool.json")), "gpt-5.4"
    )
    parsed = ChatCompletion.model_validate(sdk_round_trip(completion))
    assert parsed.choices[0].finish_reason == "tool_calls"
    assert_golden("response_reasoning_text_tool.to_chat.json", completion)
