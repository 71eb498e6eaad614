from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from aicy.errors import InvalidRequest, UnsupportedValue
from aicy.protocol import ids, responses
from aicy.types import (
    Event,
    Finish,
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

STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def sdk_shape(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON round trip: the value as a client receives it."""
    copy: dict[str, Any] = json.loads(json.dumps(value))
    return copy


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "input": "hi", **fields}


def parse_error(raw: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        responses.parse_request(raw)
    return info.value


# parse_request


def test_minimal_request() -> None:
    request = responses.parse_request(body())
    assert request.input == "hi"
    assert request.output_format == OutputFormat()


def test_metadata_limits_accept_the_maximum() -> None:
    metadata = {f"k{i}": "v" for i in range(15)} | {"k" * 64: "v" * 512}
    assert responses.parse_request(body(metadata=metadata)).metadata == metadata


@pytest.mark.parametrize(
    ("metadata", "param", "code"),
    [
        ({f"k{i}": "v" for i in range(17)}, "metadata", "object_above_max_properties"),
        ({"k" * 65: "v"}, "metadata", "string_above_max_length"),
        ({"note": "v" * 513}, "metadata.note", "string_above_max_length"),
        ({"note": 5}, "metadata.note", "invalid_type"),
    ],
)
def test_metadata_limits(metadata: dict[str, Any], param: str, code: str) -> None:
    err = parse_error(body(metadata=metadata))
    assert (err.param, err.code) == (param, code)


@pytest.mark.parametrize(
    ("fmt", "param"),
    [
        ({"type": "json_schema", "schema": {"type": "object"}}, "text.format.name"),
        ({"type": "json_schema", "name": "person"}, "text.format.schema"),
    ],
)
def test_json_schema_needs_name_and_schema(fmt: dict[str, Any], param: str) -> None:
    err = parse_error(body(text={"format": fmt}))
    assert (err.param, err.code) == (param, "missing_required_parameter")


def test_json_schema_output_format() -> None:
    fmt = {"type": "json_schema", "name": "p", "schema": {"type": "object"}, "strict": True}
    request = responses.parse_request(body(text={"format": fmt}))
    assert request.output_format == OutputFormat("json_schema", "p", {"type": "object"}, True)
    json_object = responses.parse_request(body(text={"format": {"type": "json_object"}}))
    assert json_object.output_format == OutputFormat(type="json_object")


def test_background_is_refused() -> None:
    err = parse_error(body(background=True))
    assert isinstance(err, UnsupportedValue)
    assert err.param == "background"
    assert responses.parse_request(body(background=False)).background is False


def test_max_output_tokens_at_least_16() -> None:
    err = parse_error(body(max_output_tokens=15))
    assert (err.param, err.code) == ("max_output_tokens", "integer_below_min_value")
    assert responses.parse_request(body(max_output_tokens=16)).max_output_tokens == 16


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        ({"model": "m"}, "input", "missing_required_parameter"),
        (body(input=5), "input", "invalid_type"),
        (body(input=[{"role": "user", "content": "a"}, "b"]), "input[1]", "invalid_type"),
        (body(temperature=-1), "temperature", "decimal_below_min_value"),
    ],
)
def test_invalid_fields(raw: dict[str, Any], param: str, code: str) -> None:
    err = parse_error(raw)
    assert (err.param, err.code) == (param, code)


# input_items


def items_of(input_: Any) -> list[dict[str, Any]]:
    return responses.input_items(responses.parse_request(body(input=input_)))


def test_string_input_is_one_user_message() -> None:
    [item] = items_of("hello")
    assert item["id"].startswith("msg_")
    assert {k: v for k, v in item.items() if k != "id"} == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
        "status": "completed",
    }


def test_list_input_keeps_given_ids_and_adds_missing_ones() -> None:
    items = items_of(
        [
            {"role": "user", "content": "hi", "id": "msg_given"},
            {"type": "message", "role": "assistant", "content": "yo"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "42", "id": "out_1"},
        ]
    )
    assert items[0]["id"] == "msg_given"
    assert items[0]["content"] == [{"type": "input_text", "text": "hi"}]
    assert items[1]["id"].startswith("msg_")
    assert items[1]["content"] == [{"type": "output_text", "text": "yo", "annotations": []}]
    assert items[2]["id"].startswith("msg_")
    assert items[2]["status"] == "completed"
    assert isinstance(items[3]["id"], str) and items[3]["id"]
    assert items[3]["call_id"] == "c1"
    assert items[4]["id"] == "out_1"
    assert len({item["id"] for item in items}) == 5


@pytest.mark.parametrize(
    ("item", "param", "code"),
    [
        ({"role": "tool", "content": "x"}, "input[0].role", "invalid_value"),
        ({"content": "x"}, "input[0].type", "missing_required_parameter"),
        (
            {"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]},
            "input[0].content[0]",
            "unsupported_value",
        ),
    ],
)
def test_bad_input_items(item: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        items_of([item])
    assert (info.value.param, info.value.code) == (param, code)


# to_messages


def test_to_messages_groups_function_calls() -> None:
    messages = responses.to_messages(
        [
            {"type": "message", "role": "developer", "content": "be brief"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "9"}],
            },
        ]
    )
    assert messages == [
        Message(role="system", content="be brief"),
        Message(role="user", content="weather?"),
        Message(
            role="assistant",
            tool_calls=(ToolCall("c1", "f", '{"a":1}'), ToolCall("c2", "g", "{}")),
        ),
        Message(role="tool", content="sunny", tool_call_id="c1"),
        Message(role="tool", content="9", tool_call_id="c2"),
    ]


def test_to_messages_refuses_unknown_item_types() -> None:
    items = [{"type": "message", "role": "user", "content": "hi"}, {"type": "telepathy"}]
    with pytest.raises(UnsupportedValue) as info:
        responses.to_messages(items)
    assert info.value.param == "input[1].type"


def test_to_messages_leaves_out_hosted_tool_calls() -> None:
    items = [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "q"}},
        {"type": "tool_search_call", "call_id": "t1", "arguments": {}},
        {"type": "tool_search_output", "call_id": "t1", "tools": []},
        {"type": "local_shell_call", "call_id": "l1", "action": {"type": "exec", "command": ["ls"]}},
    ]
    assert responses.to_messages(items) == [Message(role="user", content="hi")]


def test_to_generation() -> None:
    request = responses.parse_request(
        body(
            instructions="be kind",
            max_output_tokens=64,
            reasoning={"effort": "low"},
            parallel_tool_calls=False,
            tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        )
    )
    history = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]}]
    gen = responses.to_generation(request, history, responses.input_items(request))
    assert gen.messages == [
        Message(role="system", content="be kind"),
        Message(role="assistant", content="x"),
        Message(role="user", content="hi"),
    ]
    assert (gen.max_output_tokens, gen.reasoning_effort, gen.parallel_tool_calls) == (64, "low", False)
    assert [t.name for t in gen.tools] == ["f"]


def test_hosted_tools_are_left_out_and_named() -> None:
    tools = [
        {"type": "web_search", "external_web_access": False},
        {"type": "function", "name": "f", "parameters": {"type": "object"}},
        {"type": "image_generation"},
        {"type": "mcp", "server_label": "s", "server_url": "https://example.com"},
        {"type": "web_search"},
        {"type": "local_shell"},
    ]
    request = responses.parse_request(body(tools=tools, tool_choice={"type": "image_generation"}))
    gen = responses.to_generation(request, [], responses.input_items(request))
    assert [t.name for t in gen.tools] == ["f"]
    assert gen.omitted_tools == ("web_search", "image_generation", "mcp", "local_shell")
    assert gen.tool_choice == ToolChoice(mode="auto")


def test_forcing_a_hosted_tool_that_was_not_given_is_refused() -> None:
    request = responses.parse_request(body(tool_choice={"type": "image_generation"}))
    with pytest.raises(UnsupportedValue) as info:
        responses.to_generation(request, [], responses.input_items(request))
    assert info.value.param == "tool_choice"


NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Sub-agents.",
    "tools": [
        {"type": "function", "name": "spawn_agent", "strict": False, "parameters": {"type": "object"}},
        {"type": "function", "name": "wait", "description": "Wait.", "parameters": {"type": "object"}},
    ],
}
CUSTOM = {"type": "custom", "name": "apply_patch", "description": "Edit files.", "format": {"type": "text"}}


def test_namespaces_are_flattened_and_custom_tools_take_one_string() -> None:
    plain = {"type": "function", "name": "exec_command", "parameters": {"type": "object"}}
    request = responses.parse_request(body(tools=[plain, NAMESPACE, CUSTOM]))
    gen = responses.to_generation(request, [], responses.input_items(request))
    assert [t.name for t in gen.tools] == ["exec_command", "spawn_agent", "wait", "apply_patch"]
    custom = gen.tools[-1]
    assert custom.parameters is not None and custom.parameters["required"] == ["input"]
    assert custom.description == "Edit files."
    assert gen.tools[1].strict is False and gen.tools[2].description == "Wait."


def test_a_namespaced_name_that_collides_is_prefixed() -> None:
    clash = {"type": "function", "name": "wait", "parameters": {"type": "object"}}
    request = responses.parse_request(
        body(tools=[clash, NAMESPACE], tool_choice={"type": "function", "name": "wait"})
    )
    gen = responses.to_generation(request, [], responses.input_items(request))
    assert [t.name for t in gen.tools] == ["wait", "spawn_agent", "multi_agent_v1__wait"]
    assert gen.tool_choice == ToolChoice(mode="function", name="wait")


@pytest.mark.parametrize(
    ("tool", "param", "code"),
    [
        ({"type": "namespace", "name": "n"}, "tools[0].tools", "invalid_type"),
        ({"type": "namespace", "name": "n", "tools": ["x"]}, "tools[0].tools[0]", "invalid_type"),
        (
            {"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]},
            "tools[0].tools[0].type",
            "invalid_value",
        ),
        ({"type": "namespace", "tools": []}, "tools[0].name", "missing_required_parameter"),
        ({"type": "custom"}, "tools[0].name", "missing_required_parameter"),
        ({"type": "custom", "name": "a\x00b"}, "tools[0].name", "invalid_value"),
        (
            {"type": "namespace", "name": "n", "tools": [{"name": "f", "strict": "yes"}]},
            "tools[0].tools[0].strict",
            "invalid_type",
        ),
    ],
)
def test_malformed_tool_groups_are_refused_when_translated(
    tool: dict[str, Any], param: str, code: str
) -> None:
    request = responses.parse_request(body(tools=[tool]))
    with pytest.raises(InvalidRequest) as info:
        responses.to_generation(request, [], responses.input_items(request))
    assert (info.value.param, info.value.code) == (param, code)


def test_duplicate_tool_names_are_refused() -> None:
    twice = {"type": "function", "name": "f"}
    request = responses.parse_request(body(tools=[twice, {**twice}]))
    with pytest.raises(InvalidRequest) as info:
        responses.to_generation(request, [], responses.input_items(request))
    assert info.value.code == "duplicate_tool_name"


def test_replayed_custom_and_namespaced_calls_go_back_as_tool_calls() -> None:
    clash = {"type": "function", "name": "wait", "parameters": {"type": "object"}}
    request = responses.parse_request(body(tools=[clash, NAMESPACE, CUSTOM]))
    items = [
        {"type": "message", "role": "user", "content": "go"},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-opaque"},
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
        {
            "type": "function_call",
            "call_id": "c2",
            "name": "wait",
            "namespace": "multi_agent_v1",
            "arguments": "{}",
        },
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done!"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "ok"}]},
    ]
    messages = responses.to_generation(request, [], items).messages
    assert messages[1] == Message(
        role="assistant",
        tool_calls=(
            ToolCall("c1", "apply_patch", '{"input":"*** Begin Patch"}'),
            ToolCall("c2", "multi_agent_v1__wait", "{}"),
        ),
    )
    assert messages[2:] == [
        Message(role="tool", content="Done!", tool_call_id="c1"),
        Message(role="tool", content="ok", tool_call_id="c2"),
    ]


# ResponsesEncoder


def new_encoder(**fields: Any) -> responses.ResponsesEncoder:
    request = responses.parse_request(body(**fields))
    return responses.ResponsesEncoder(responses.skeleton(request, ids.response_id(), "m"))


def wire(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Serialize as the server does (at once) and check each event against the SDK's types."""
    out = [json.loads(json.dumps(e)) for e in events]
    for event in out:
        STREAM_EVENT.validate_python(sdk_shape(event))
    return out


def run(encoder: responses.ResponsesEncoder, events: list[Event]) -> list[dict[str, Any]]:
    out = wire(encoder.start())
    for event in events:
        out += wire(encoder.feed(event))
    return out + wire(encoder.finish())


def test_text_event_order_and_final_response() -> None:
    encoder = new_encoder()
    events = run(encoder, [TextDelta("Hel"), TextDelta("lo"), Finish("stop"), Usage(5, 2)])
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["output"] == []
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["Hel", "lo"]
    assert all(e["output_index"] == 0 for e in events[2:-1])
    item_id = events[2]["item"]["id"]
    assert all(e.get("item_id", item_id) == item_id for e in events[3:-1])
    assert events[6]["text"] == "Hello"

    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["output"] == [
        {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}],
        }
    ]
    assert final["usage"]["input_tokens"] == 5
    assert final["usage"]["output_tokens"] == 2
    assert final["usage"]["total_tokens"] == 7
    parsed = Response.model_validate(sdk_shape(final))
    assert parsed.output_text == "Hello"
    assert encoder.response["status"] == "completed"


def test_length_finish_is_incomplete() -> None:
    events = run(new_encoder(max_output_tokens=16), [TextDelta("cut"), Finish("length"), Usage(5, 16)])
    last = events[-1]
    assert last["type"] == "response.incomplete"
    response = last["response"]
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"
    assert Response.model_validate(sdk_shape(response)).incomplete_details is not None


def test_reasoning_then_text_then_function_call() -> None:
    events = run(
        new_encoder(tools=[{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]),
        [
            ReasoningDelta("think"),
            ReasoningDelta("ing"),
            TextDelta("Let me check."),
            ToolCallStart(0, "call_1", "lookup"),
            ToolCallDelta(0, '{"q":'),
            ToolCallDelta(0, '"x"}'),
            Finish("tool_calls"),
            Usage(10, 8, reasoning_tokens=2),
        ],
    )
    steps = [(e["type"].removeprefix("response."), e.get("output_index")) for e in events]
    assert steps == [
        ("created", None),
        ("in_progress", None),
        ("output_item.added", 0),
        ("reasoning_summary_part.added", 0),
        ("reasoning_summary_text.delta", 0),
        ("reasoning_summary_text.delta", 0),
        ("reasoning_summary_text.done", 0),
        ("reasoning_summary_part.done", 0),
        ("output_item.done", 0),
        ("output_item.added", 1),
        ("content_part.added", 1),
        ("output_text.delta", 1),
        ("output_text.done", 1),
        ("content_part.done", 1),
        ("output_item.done", 1),
        ("output_item.added", 2),
        ("function_call_arguments.delta", 2),
        ("function_call_arguments.delta", 2),
        ("function_call_arguments.done", 2),
        ("output_item.done", 2),
        ("completed", None),
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[6]["text"] == "thinking"
    added_call = events[15]["item"]
    assert added_call["status"] == "in_progress"
    assert (added_call["arguments"], added_call["call_id"]) == ("", "call_1")
    assert events[18]["arguments"] == '{"q":"x"}'

    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    reasoning, message, call = final["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "thinking"}]
    assert message["content"][0]["text"] == "Let me check."
    assert (call["name"], call["call_id"], call["arguments"], call["status"]) == (
        "lookup",
        "call_1",
        '{"q":"x"}',
        "completed",
    )
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 2
    Response.model_validate(sdk_shape(final))


def test_two_parallel_function_calls_get_their_own_items() -> None:
    events = run(
        new_encoder(),
        [
            ToolCallStart(0, "c0", "f"),
            ToolCallDelta(0, "{}"),
            ToolCallStart(1, "c1", "g"),
            ToolCallDelta(1, "[]"),
        ],
    )
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [(e["output_index"], e["arguments"]) for e in done] == [(0, "{}"), (1, "[]")]
    assert [i["call_id"] for i in events[-1]["response"]["output"]] == ["c0", "c1"]


def tool_encoder(tools: list[dict[str, Any]]) -> responses.ResponsesEncoder:
    request = responses.parse_request(body(tools=tools))
    skeleton = responses.skeleton(request, ids.response_id(), "m")
    return responses.ResponsesEncoder(skeleton, responses.request_tools(request))


def test_a_custom_tool_call_streams_its_input() -> None:
    patch = '*** Begin Patch\n+x = "1"\n*** End Patch'
    arguments = json.dumps({"input": patch})
    deltas = [ToolCallDelta(0, arguments[i : i + 4]) for i in range(0, len(arguments), 4)]
    events = run(
        tool_encoder([CUSTOM]), [ToolCallStart(0, "call_1", "apply_patch"), *deltas, Finish("tool_calls")]
    )
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["type"] == "custom_tool_call" and added["item"]["id"].startswith("ctc_")
    streamed = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert len(streamed) > 3 and "".join(streamed) == patch
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == patch
    assert not [e for e in events if e["type"].startswith("response.function_call")]
    item = events[-1]["response"]["output"][0]
    assert item == {
        "id": added["item"]["id"],
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "call_1",
        "name": "apply_patch",
        "input": patch,
    }
    Response.model_validate(sdk_shape(events[-1]["response"]))


def test_a_namespaced_call_comes_back_with_its_namespace() -> None:
    clash = {"type": "function", "name": "wait", "parameters": {"type": "object"}}
    events = run(
        tool_encoder([clash, NAMESPACE]),
        [
            ToolCallStart(0, "c0", "multi_agent_v1__wait"),
            ToolCallDelta(0, "{}"),
            ToolCallStart(1, "c1", "spawn_agent"),
            ToolCallStart(2, "c2", "wait"),
        ],
    )
    output = events[-1]["response"]["output"]
    assert [(i["name"], i.get("namespace")) for i in output] == [
        ("wait", "multi_agent_v1"),
        ("spawn_agent", "multi_agent_v1"),
        ("wait", None),
    ]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [e["name"] for e in done] == ["wait", "spawn_agent", "wait"]


def test_function_tools_echo_strict_and_description() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}, NAMESPACE, CUSTOM]
    request = responses.parse_request(body(tools=tools))
    echoed = responses.skeleton(request, "resp_1", "m")["tools"]
    assert echoed[0] == {
        "type": "function",
        "name": "f",
        "description": None,
        "parameters": {"type": "object"},
        "strict": None,
    }
    assert echoed[1]["type"] == "namespace" and echoed[2] == CUSTOM
    Response.model_validate(sdk_shape(responses.skeleton(request, "resp_1", "m")))


def test_fail_closes_open_item_and_reports_error() -> None:
    encoder = new_encoder()
    events = wire(encoder.start() + encoder.feed(TextDelta("par")) + encoder.fail("server_error", "boom"))
    assert [e["type"] for e in events][-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.failed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    response = events[-1]["response"]
    assert response["status"] == "failed"
    assert response["error"] == {"code": "server_error", "message": "boom"}
    assert Response.model_validate(sdk_shape(response)).error is not None


def test_skeleton_echoes_request() -> None:
    request = responses.parse_request(
        body(instructions="x", temperature=0.2, metadata={"a": "b"}, store=False, text={"verbosity": "low"})
    )
    skeleton = responses.skeleton(request, "resp_1", "served-model", default_top_p=0.95)
    assert (skeleton["id"], skeleton["model"]) == ("resp_1", "served-model")
    assert skeleton["status"] == "in_progress"
    assert (skeleton["temperature"], skeleton["top_p"]) == (0.2, 0.95)
    assert skeleton["store"] is False
    assert skeleton["metadata"] == {"a": "b"}
    assert skeleton["text"] == {"format": {"type": "text"}, "verbosity": "low"}
    assert skeleton["tool_choice"] == "auto"
    Response.model_validate(skeleton)


def test_usage_matches_sdk() -> None:
    encoder = new_encoder()
    encoder.start()
    encoder.feed(TextDelta("hi"))
    encoder.feed(Usage(3, 1))
    encoder.finish()
    Response.model_validate(encoder.response)


def test_left_out_tool_types_are_shown_only_as_safe_words() -> None:
    tools = [{"type": "web_search"}, {"type": "x\r\nSet-Cookie: a=b"}, {"type": "\u0000"}, {"type": "工具"}]
    request = responses.parse_request(body(tools=tools))
    gen = responses.to_generation(request, [], responses.input_items(request))
    assert gen.omitted_tools == ("web_search", "other")
