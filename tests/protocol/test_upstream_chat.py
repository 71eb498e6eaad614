from __future__ import annotations

from typing import Any

import pytest
from openai import omit
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.chat import ChatCompletion
from openai.types.responses import ParsedResponseFunctionToolCall

from aicy.errors import UpstreamError
from aicy.protocol import chat, responses
from aicy.protocol.upstream_chat import (
    ChatStreamDecoder,
    chat_completion_events,
    chat_request_body,
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
    check_responses_events,
    decode_chat,
    read_json,
    read_sse,
    responses_encoder,
    sdk_round_trip,
    to_responses_stream,
)

WEATHER = FunctionTool(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PARIS = ToolCall("call_a", "get_weather", '{"city":"Paris"}')
TOKYO = ToolCall("call_b", "get_weather", '{"city":"Tokyo"}')
TOOL_CONVERSATION = [
    Message("system", "Be brief."),
    Message("user", "Weather in Paris and Tokyo?"),
    Message("assistant", tool_calls=(PARIS, TOKYO), reasoning="Two cities: two calls."),
    Message("tool", "18C, cloudy", tool_call_id="call_a"),
    Message("tool", "25C, sunny", tool_call_id="call_b"),
    Message("assistant", "Paris 18C and cloudy; Tokyo 25C and sunny."),
    Message("user", "Thanks!"),
]


def request(**fields: Any) -> GenerationRequest:
    return GenerationRequest(model="customer-name", messages=[Message("user", "hi")], **fields)


def body(**fields: Any) -> dict[str, Any]:
    return chat_request_body(request(**fields), "upstream-name", stream=False)


# chat_request_body


def test_minimal_body_has_only_what_was_set() -> None:
    assert body() == {
        "model": "upstream-name",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
    }


def test_stream_always_asks_for_usage() -> None:
    streamed = chat_request_body(request(), "m", stream=True)
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}


def test_multi_turn_tool_conversation() -> None:
    sent = chat_request_body(
        GenerationRequest(model="m", messages=TOOL_CONVERSATION, tools=(WEATHER,)), "up", stream=False
    )
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {
            "role": "assistant",
            "content": "",
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
        {"role": "assistant", "content": "Paris 18C and cloudy; Tokyo 25C and sunny."},
        {"role": "user", "content": "Thanks!"},
    ]


def test_assistant_text_with_tool_calls_keeps_the_text() -> None:
    message = Message("assistant", "Checking.", tool_calls=(PARIS,))
    [sent] = chat_request_body(GenerationRequest("m", [message]), "up", stream=False)["messages"]
    assert sent["content"] == "Checking."
    assert [c["id"] for c in sent["tool_calls"]] == ["call_a"]


def test_assistant_reasoning_is_not_sent() -> None:
    message = Message("assistant", "Hello.", reasoning="thinking")
    [sent] = chat_request_body(GenerationRequest("m", [message]), "up", stream=False)["messages"]
    assert sent == {"role": "assistant", "content": "Hello."}


def test_empty_assistant_turn_stays_a_string() -> None:
    [sent] = chat_request_body(GenerationRequest("m", [Message("assistant")]), "up", stream=False)["messages"]
    assert sent == {"role": "assistant", "content": ""}


def test_responses_client_conversation_to_chat_upstream() -> None:
    """A Responses client's items (instructions, calls, outputs) reach a Chat upstream as Chat messages."""
    client = responses.parse_request(
        {
            "model": "m",
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": "Weather in Paris and Tokyo?"},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Two calls."}]},
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
                        {"type": "output_text", "text": "Paris 18C and cloudy; Tokyo 25C and sunny."}
                    ],
                },
                {"role": "developer", "content": "Answer in French from now on."},
                {"role": "user", "content": [{"type": "input_text", "text": "Thanks!"}]},
            ],
            "tools": [
                {"type": "function", "name": "get_weather", "parameters": WEATHER.parameters, "strict": True}
            ],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "reasoning": {"effort": "high", "summary": "auto"},
            "max_output_tokens": 500,
        }
    )
    generation = responses.to_generation(client, [], responses.input_items(client))
    sent = chat_request_body(generation, "up", stream=True)
    assert [m["role"] for m in sent["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "system",
        "user",
    ]
    assert sent["messages"][2]["tool_calls"][1]["id"] == "call_b"
    assert sent["messages"][4] == {"role": "tool", "tool_call_id": "call_b", "content": "25C, sunny"}
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": WEATHER.parameters, "strict": True},
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (sent["reasoning_effort"], sent["max_completion_tokens"]) == ("high", 500)


def test_chat_client_body_survives_the_round_trip() -> None:
    """A Chat client's body, parsed to neutral and written back, is the body it sent (model aside)."""
    original = {
        "model": "up",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}},
            }
        ],
        "parallel_tool_calls": False,
        "tool_choice": "required",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
        },
        "stop": ["END"],
        "reasoning_effort": "low",
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "user": "u-1",
        "prompt_cache_key": "thread-1",
        "max_completion_tokens": 300,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    generation = chat.to_generation(chat.parse_request(original))
    assert chat_request_body(generation, "up", stream=True) == original


@pytest.mark.parametrize("parallel", [True, False])
def test_tools_are_nested_and_parallel_flag_goes_with_them(parallel: bool) -> None:
    sent = body(tools=(WEATHER,), parallel_tool_calls=parallel)
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert sent["parallel_tool_calls"] is parallel
    assert "parallel_tool_calls" not in body(parallel_tool_calls=parallel)


def test_tool_strict_is_sent_when_set() -> None:
    sent = body(tools=(FunctionTool("f", strict=False),))
    assert sent["tools"] == [{"type": "function", "function": {"name": "f", "strict": False}}]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice("auto"), "auto"),
        (ToolChoice("none"), "none"),
        (ToolChoice("required"), "required"),
        (ToolChoice("function", "get_weather"), {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: ToolChoice, wire: Any) -> None:
    assert body(tools=(WEATHER,), tool_choice=choice)["tool_choice"] == wire


@pytest.mark.parametrize(
    ("fmt", "wire"),
    [
        (OutputFormat(), None),
        (OutputFormat("json_object"), {"type": "json_object"}),
        (
            OutputFormat("json_schema", "person", {"type": "object"}, True),
            {
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": {"type": "object"}, "strict": True},
            },
        ),
        (
            OutputFormat("json_schema", "person", {"type": "object"}),
            {"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"}}},
        ),
    ],
)
def test_response_format(fmt: OutputFormat, wire: Any) -> None:
    assert body(output_format=fmt).get("response_format") == wire


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reasoning_effort", "minimal"),
        ("temperature", 0.0),
        ("top_p", 0.5),
        ("seed", 0),
        ("presence_penalty", 1.5),
        ("frequency_penalty", -1.0),
        ("user", "end-user-7"),
        ("prompt_cache_key", "thread-9"),
    ],
)
def test_optional_fields_only_when_set(field: str, value: Any) -> None:
    assert body(**{field: value})[field] == value  # zero values count as set
    assert field not in body()


def test_stop_sequences_are_a_list() -> None:
    assert body(stop=("END", "STOP"))["stop"] == ["END", "STOP"]
    assert "stop" not in body()


def test_output_limit_field_is_chosen_by_the_channel() -> None:
    assert body(max_output_tokens=64)["max_completion_tokens"] == 64
    legacy = chat_request_body(
        request(max_output_tokens=64), "m", stream=False, max_tokens_field="max_tokens"
    )
    assert legacy["max_tokens"] == 64
    assert "max_completion_tokens" not in legacy
    assert "max_completion_tokens" not in body()


# ChatStreamDecoder on recorded streams


def test_reasoning_then_text_stream() -> None:
    """DeepSeek/vLLM: ``reasoning_content`` deltas (``content: null``), then content; usage comes last."""
    events = decode_chat(read_sse("chat_reasoning_deepseek.sse"))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert reasoning == "The user asks for the capital of France. That is Paris."
    assert (
        "".join(e.text for e in events if isinstance(e, TextDelta)) == "The capital of France is **Paris**."
    )
    assert events[-2:] == [Finish("stop"), Usage(80, 31, cached_tokens=64, reasoning_tokens=21)]
    assert [type(e) for e in events[:9]] == [ReasoningDelta] * 8 + [TextDelta]


def test_parallel_tool_calls_with_interleaved_fragments() -> None:
    events = decode_chat(read_sse("chat_parallel_tools_interleaved.sse"))
    weather, time = "chatcmpl-tool-3a9f1c7e52d84b0f", "chatcmpl-tool-b81e06d4c2a9473f"
    assert events == [
        ToolCallStart(0, weather, "get_weather"),
        ToolCallStart(1, time, "get_time"),
        ToolCallDelta(1, '{"tz": '),
        ToolCallDelta(0, '{"city": '),
        ToolCallDelta(1, '"Europe/Paris"}'),
        ToolCallDelta(0, '"Paris"}'),
        Finish("tool_calls"),
        Usage(312, 46, cached_tokens=256),
    ]


def test_usage_chunk_with_cached_tokens_is_reported_when_it_arrives() -> None:
    decoder = ChatStreamDecoder()
    decoder.feed(chunk({"content": "hi"}, "stop"))
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0},
    }
    assert decoder.feed({"id": "x", "choices": [], "usage": usage}) == [Usage(2006, 300, 1920, 192)]
    assert decoder.close() == []


def test_vllm_reasoning_field() -> None:
    decoder = ChatStreamDecoder()
    assert decoder.feed(chunk({"reasoning": "hmm"})) == [ReasoningDelta("hmm")]
    both = decoder.feed(chunk({"reasoning_content": "so", "reasoning": "so"}))  # vLLM sent both for a while
    assert both == [ReasoningDelta("so")]


# ChatStreamDecoder rules


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def tool_delta(index: int, **fields: Any) -> dict[str, Any]:
    return chunk({"tool_calls": [{"index": index, **fields}]})


def test_tool_indexes_follow_first_appearance() -> None:
    decoder = ChatStreamDecoder()
    first = decoder.feed(tool_delta(3, id="call_x", function={"name": "later", "arguments": "{}"}))
    second = decoder.feed(tool_delta(1, id="call_y", function={"name": "earlier", "arguments": ""}))
    more = decoder.feed(tool_delta(3, function={"arguments": " "}))
    assert first == [ToolCallStart(0, "call_x", "later"), ToolCallDelta(0, "{}")]
    assert second == [ToolCallStart(1, "call_y", "earlier")]
    assert more == [ToolCallDelta(0, " ")]


def test_tool_call_without_index_uses_its_position() -> None:
    calls = [{"index": None, "id": "a", "function": {"name": "f"}}, {"id": "b", "function": {"name": "g"}}]
    events = ChatStreamDecoder().feed(chunk({"tool_calls": calls}))
    assert events == [ToolCallStart(0, "a", "f"), ToolCallStart(1, "b", "g")]


def test_missing_tool_call_id_is_generated() -> None:
    [start] = ChatStreamDecoder().feed(tool_delta(0, function={"name": "f"}))
    assert isinstance(start, ToolCallStart)
    assert start.id.startswith("call_") and len(start.id) > 10


def test_whole_call_in_one_chunk_with_object_arguments() -> None:
    events = ChatStreamDecoder().feed(tool_delta(0, id="c", function={"name": "f", "arguments": {"a": 1}}))
    assert events == [ToolCallStart(0, "c", "f"), ToolCallDelta(0, '{"a":1}')]


@pytest.mark.parametrize(
    ("upstream", "ours"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("eos", "stop"),
    ],
)
def test_finish_reasons(upstream: str, ours: str) -> None:
    decoder = ChatStreamDecoder()
    assert decoder.feed(chunk({}, upstream)) == [Finish(ours)]  # type: ignore[arg-type]
    assert decoder.close() == []


def test_stop_after_tool_calls_means_tool_calls() -> None:
    decoder = ChatStreamDecoder()
    decoder.feed(tool_delta(0, id="c", function={"name": "f"}))
    assert decoder.feed(chunk({}, "stop")) == [Finish("tool_calls")]


def test_finish_is_emitted_once() -> None:
    decoder = ChatStreamDecoder()
    assert decoder.feed(chunk({"content": "a"}, "length")) == [TextDelta("a"), Finish("length")]
    assert decoder.feed(chunk({}, "stop")) == []
    assert decoder.close() == []


def test_close_without_finish_reports_stop() -> None:
    decoder = ChatStreamDecoder()
    decoder.feed(chunk({"content": "a"}))
    assert decoder.close() == [Finish("stop")]


def test_running_usage_on_every_chunk_is_reported_once_at_the_end() -> None:
    decoder = ChatStreamDecoder()
    running = [{"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n} for n in (1, 2)]
    assert decoder.feed(chunk({"content": "a"}, usage=running[0])) == [TextDelta("a")]
    assert decoder.feed(chunk({}, "stop", usage=running[1])) == [Finish("stop")]
    assert decoder.close() == [Usage(5, 2)]


def test_refusal_is_text() -> None:
    assert ChatStreamDecoder().feed(chunk({"refusal": "I can't help with that."})) == [
        TextDelta("I can't help with that.")
    ]


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (
            {"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"},
            "rate_limit_exceeded",
            "Rate limit reached",
        ),
        ({"message": "boom", "type": "server_error", "code": None}, None, "boom"),
        ("upstream exploded", None, "upstream exploded"),
    ],
)
def test_error_chunk_raises(error: Any, code: str | None, message: str) -> None:
    decoder = ChatStreamDecoder()
    decoder.feed(chunk({"content": "partial"}))
    with pytest.raises(UpstreamError) as info:
        decoder.feed({"error": error})
    assert (info.value.status, info.value.type, info.value.code, info.value.message) == (
        502,
        "upstream_error",
        code,
        message,
    )


# chat_completion_events


def test_completion_with_reasoning_text_and_tool_calls() -> None:
    events = chat_completion_events(read_json("chat_completion_tool_calls.json"))
    paris, tokyo = "call_00_Vn4kR7pQ2sT9wX1yZ3bD6fH8", "call_01_Jm5nP8qR1sU4vW7xY0aB3cE6"
    assert events == [
        ReasoningDelta("Two cities, so two calls."),
        TextDelta("Checking both cities."),
        ToolCallStart(0, paris, "get_weather"),
        ToolCallDelta(0, '{"city": "Paris"}'),
        ToolCallStart(1, tokyo, "get_weather"),
        ToolCallDelta(1, '{"city": "Tokyo"}'),
        Finish("tool_calls"),
        Usage(210, 58, cached_tokens=128, reasoning_tokens=9),
    ]


def test_plain_completion() -> None:
    completion = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    assert chat_completion_events(completion) == [TextDelta("Hi!"), Finish("length"), Usage(3, 1)]


def test_completion_error_body_raises() -> None:
    with pytest.raises(UpstreamError) as info:
        chat_completion_events({"error": {"message": "bad", "code": "invalid_prompt", "param": "messages"}})
    assert (info.value.code, info.value.param) == ("invalid_prompt", "messages")


# golden translations: a Chat upstream answering a Responses client


def test_recorded_chat_streams_are_valid_chat_chunks() -> None:
    for name in ("chat_reasoning_deepseek.sse", "chat_parallel_tools_interleaved.sse"):
        check_chat_chunks(read_sse(name))


def test_golden_reasoning_stream_to_responses() -> None:
    events = decode_chat(read_sse("chat_reasoning_deepseek.sse"))
    out, final = to_responses_stream(events, {"model": "deepseek-reasoner", "input": "hi", "stream": True})
    response = check_responses_events(out, final)
    assert response.output_text == "The capital of France is **Paris**."
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 64
    assert_golden("chat_reasoning_deepseek.to_responses.json", out)


def test_golden_completion_to_responses() -> None:
    encoder = responses_encoder({"model": "deepseek-chat", "input": "hi"})
    for event in chat_completion_events(read_json("chat_completion_tool_calls.json")):
        encoder.feed(event)
    encoder.finish()
    response = check_responses_events([], encoder.response)
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.call_id, c.arguments) for c in calls] == [
        ("call_00_Vn4kR7pQ2sT9wX1yZ3bD6fH8", '{"city": "Paris"}'),
        ("call_01_Jm5nP8qR1sU4vW7xY0aB3cE6", '{"city": "Tokyo"}'),
    ]
    assert_golden("chat_completion_tool_calls.to_responses.json", encoder.response)


def test_interleaved_tool_calls_reach_a_responses_client_whole() -> None:
    events = decode_chat(read_sse("chat_parallel_tools_interleaved.sse"))
    out, final = to_responses_stream(events, {"model": "Qwen/Qwen3-32B", "input": "hi", "stream": True})
    check_responses_events(out, final)
    done = {e["output_index"]: e for e in out if e["type"] == "response.output_item.done"}
    late = [
        e
        for e in out
        if e["type"] == "response.function_call_arguments.delta"
        and done[e["output_index"]]["sequence_number"] < e["sequence_number"]
    ]
    assert late == [], f"{len(late)} argument deltas arrived after their item was done"
    assert [(item["name"], item["arguments"]) for item in final["output"]] == [
        ("get_weather", '{"city": "Paris"}'),
        ("get_time", '{"tz": "Europe/Paris"}'),
    ]


def test_sdk_response_accumulator_on_translated_stream() -> None:
    """The SDK's own ``responses.stream()`` state machine accepts the translated stream."""
    events = decode_chat(read_sse("chat_reasoning_deepseek.sse"))
    out, _ = to_responses_stream(events, {"model": "deepseek-reasoner", "input": "hi", "stream": True})
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    produced = [
        e for raw in out for e in state.handle_event(STREAM_EVENT.validate_python(sdk_round_trip(raw)))
    ]
    [completed] = [e for e in produced if e.type == "response.completed"]
    assert completed.response.output_text == "The capital of France is **Paris**."
    assert not any(isinstance(item, ParsedResponseFunctionToolCall) for item in completed.response.output)


def test_completion_golden_is_a_valid_chat_completion() -> None:
    ChatCompletion.model_validate(read_json("chat_completion_tool_calls.json"))


def test_normalise_numbers_generated_ids_and_keeps_upstream_ones() -> None:
    from tests.protocol.goldens import normalise

    msg_a, msg_b = "msg_" + "ab" * 24, "msg_" + "cd" * 24
    value = {"id": msg_a, "created": 1764000000, "items": [msg_b, msg_a, "call_Xb7kQ2mN9pLr4sT1vW6yZ0aC"]}
    assert normalise(value) == {
        "id": "<msg_1>",
        "created": "<time>",
        "items": ["<msg_2>", "<msg_1>", "call_Xb7kQ2mN9pLr4sT1vW6yZ0aC"],
    }
