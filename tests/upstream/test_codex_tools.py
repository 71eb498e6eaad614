"""Codex's tool types against the recording fault upstream: a Chat channel gets them translated (namespaces
flattened, custom tools as one-string functions, hosted tools left out and named), a Responses channel gets
them as sent; the customer sees the calls as Codex expects them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.fakes.fault_upstream import PATCH, FaultUpstream
from tests.support import Operator

FUNCTION = {
    "type": "function",
    "name": "exec_command",
    "description": "Runs a command.",
    "strict": False,
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
}
NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for spawning and managing sub-agents.",
    "tools": [
        {
            "type": "function",
            "name": "spawn_agent",
            "description": "Spawn a sub-agent.",
            "strict": False,
            "parameters": {"type": "object", "properties": {"message": {"type": "string"}}},
        }
    ],
}
CUSTOM = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Edit files with a patch.",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /(.|\\n)+/"},
}
HOSTED = [
    {"type": "web_search", "external_web_access": False},
    {"type": "tool_search", "execution": "client", "description": "Find tools.", "parameters": {}},
    {"type": "image_generation"},
]
TOOLS = [FUNCTION, NAMESPACE, CUSTOM, *HOSTED]
OMITTED = "web_search, tool_search, image_generation"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("codex-tools").start()
    yield server
    server.stop()


def _model(operator: Operator, upstream: FaultUpstream, wire_api: str) -> str:
    upstream.queue()
    upstream.requests.clear()
    model = operator.model(f"cx-{wire_api}-{time.monotonic_ns()}")
    operator.channel(f"{wire_api}-{model}", upstream.base_url, {model: f"up-{wire_api}"}, wire_api=wire_api)
    return model


@pytest.fixture
def chat_model(operator: Operator, upstream: FaultUpstream) -> str:
    return _model(operator, upstream, "chat")


@pytest.fixture
def responses_model(operator: Operator, upstream: FaultUpstream) -> str:
    return _model(operator, upstream, "responses")


def _body(model: str, **fields: Any) -> dict[str, Any]:
    return {
        "model": model,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}],
        "tools": TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-1",
        **fields,
    }


def _stream(aicy_url: str, key: str, body: dict[str, Any]) -> tuple[httpx.Headers, list[dict[str, Any]]]:
    """Raw SSE: the headers and every event, as Codex reads them."""
    events = []
    with httpx.stream(
        "POST",
        f"{aicy_url}/responses",
        json={**body, "stream": True},
        headers={"authorization": f"Bearer {key}"},
        timeout=60,
    ) as reply:
        assert reply.status_code == 200, reply.read()
        for line in reply.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
        return reply.headers, events


def _usage_line(admin: httpx.Client, model: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        lines = [ln for ln in admin.get("/admin/usage/lines").json()["data"] if ln["model"] == model]
        if lines or time.monotonic() > deadline:
            assert lines
            return dict(lines[0])
        time.sleep(0.05)


def test_a_chat_channel_gets_functions_and_the_customer_gets_codex_items(
    aicy: Any, api_key: str, admin: httpx.Client, chat_model: str, upstream: FaultUpstream
) -> None:
    upstream.queue("codex-tools")
    headers, events = _stream(aicy.base_url, api_key, _body(chat_model))

    sent = upstream.requests[-1]["body"]
    offered = {t["function"]["name"]: t["function"] for t in sent["tools"]}
    assert list(offered) == ["exec_command", "spawn_agent", "apply_patch"]
    assert offered["apply_patch"]["parameters"]["required"] == ["input"]
    assert offered["apply_patch"]["description"] == "Edit files with a patch."
    assert headers["x-aicy-omitted-tools"] == OMITTED

    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert len(deltas) > 3 and "".join(deltas) == PATCH
    assert [e["input"] for e in events if e["type"] == "response.custom_tool_call_input.done"] == [PATCH]
    output = events[-1]["response"]["output"]
    assert output[0]["type"] == "custom_tool_call"
    assert (output[0]["call_id"], output[0]["name"], output[0]["input"]) == (
        "call_patch",
        "apply_patch",
        PATCH,
    )
    assert output[1]["type"] == "function_call"
    assert (output[1]["name"], output[1]["namespace"], output[1]["arguments"]) == (
        "spawn_agent",
        "multi_agent_v1",
        '{"message": "hi"}',
    )
    echoed = events[-1]["response"]["tools"]
    assert echoed[0]["description"] == "Runs a command." and echoed[0]["strict"] is False
    assert _usage_line(admin, chat_model)["omitted_tools"] == OMITTED.replace(", ", ",")


def test_the_next_turn_sends_tool_outputs_back_as_tool_results(
    client: OpenAI, chat_model: str, upstream: FaultUpstream
) -> None:
    history = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB-opaque"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
        {
            "type": "custom_tool_call",
            "id": "ctc_1",
            "call_id": "call_patch",
            "name": "apply_patch",
            "input": PATCH,
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_spawn",
            "name": "spawn_agent",
            "namespace": "multi_agent_v1",
            "arguments": '{"message": "hi"}',
        },
        {"type": "custom_tool_call_output", "call_id": "call_patch", "output": "Success. Updated hello.txt"},
        {"type": "function_call_output", "call_id": "call_spawn", "output": "agent started"},
    ]
    body = _body(chat_model, input=history)
    reply = client.responses.create(**{k: v for k, v in body.items() if k != "tools"}, tools=TOOLS)  # type: ignore[arg-type]
    assert reply.status == "completed" and reply.output_text

    messages = upstream.requests[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    calls = messages[1]["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [
        ("call_patch", "apply_patch"),
        ("call_spawn", "spawn_agent"),
    ]
    assert json.loads(calls[0]["function"]["arguments"]) == {"input": PATCH}
    assert [(m["tool_call_id"], m["content"]) for m in messages[2:]] == [
        ("call_patch", "Success. Updated hello.txt"),
        ("call_spawn", "agent started"),
    ]


def test_a_whole_reply_shows_the_custom_call(
    client: OpenAI, chat_model: str, upstream: FaultUpstream
) -> None:
    upstream.queue("codex-tools")
    raw = client.responses.with_raw_response.create(**_body(chat_model))  # type: ignore[arg-type]
    assert raw.headers["x-aicy-omitted-tools"] == OMITTED
    output = raw.parse().output
    assert [item.type for item in output] == ["custom_tool_call", "function_call"]
    assert output[0].input == PATCH  # type: ignore[union-attr]
    assert getattr(output[1], "namespace", None) == "multi_agent_v1"


def test_a_responses_channel_gets_every_tool_as_sent(
    aicy: Any, api_key: str, responses_model: str, upstream: FaultUpstream
) -> None:
    headers, events = _stream(aicy.base_url, api_key, _body(responses_model))
    assert events[-1]["type"] == "response.completed"
    assert "x-aicy-omitted-tools" not in headers
    assert upstream.requests[-1]["body"]["tools"] == TOOLS


def test_a_request_with_only_hosted_tools_is_served_without_them(
    client: OpenAI, chat_model: str, upstream: FaultUpstream
) -> None:
    raw = client.responses.with_raw_response.create(
        model=chat_model,
        input="hi",
        tools=HOSTED,
        tool_choice={"type": "web_search"},  # type: ignore[arg-type, typeddict-item]
    )
    assert raw.headers["x-aicy-omitted-tools"] == OMITTED
    assert raw.parse().status == "completed"
    sent = upstream.requests[-1]["body"]
    assert "tools" not in sent or not sent["tools"]
    assert sent.get("tool_choice") in (None, "auto")
