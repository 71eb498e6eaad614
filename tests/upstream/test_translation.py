"""Translation and relay against the recording fault upstream: what the upstream receives, what the client
sees, for both APIs in both directions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI

from tests.fakes.fault_upstream import FaultUpstream
from tests.support import Operator


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("recorder").start()
    yield server
    server.stop()


@pytest.fixture
def chat_model(operator: Operator, upstream: FaultUpstream) -> str:
    """A reasoning model served by a Chat Completions channel."""
    upstream.queue()
    upstream.requests.clear()
    model = operator.model(
        f"tc-{time.monotonic_ns()}",
        reasoning_efforts=["low", "medium", "high"],
        default_reasoning_effort="medium",
    )
    operator.channel(f"chat-{model}", upstream.base_url, {model: "up-chat"}, wire_api="chat")
    return model


@pytest.fixture
def responses_model(operator: Operator, upstream: FaultUpstream) -> str:
    """A reasoning model served by a Responses channel."""
    upstream.queue()
    upstream.requests.clear()
    model = operator.model(
        f"tr-{time.monotonic_ns()}",
        reasoning_efforts=["low", "medium", "high"],
        default_reasoning_effort="medium",
    )
    operator.channel(f"resp-{model}", upstream.base_url, {model: "up-resp"}, wire_api="responses")
    return model


def test_chat_relay_keeps_the_body_and_reply(
    client: OpenAI, chat_model: str, upstream: FaultUpstream
) -> None:
    reply = client.chat.completions.create(
        model=chat_model,
        messages=[{"role": "user", "content": "hi"}],
        logit_bias={"42": 1},
        extra_body={"vendor_extension": {"keep": True}},
    )
    sent = upstream.requests[-1]
    assert sent["api"] == "chat"
    assert sent["body"]["model"] == "up-chat"
    assert sent["body"]["vendor_extension"] == {"keep": True}
    assert sent["body"]["logit_bias"] == {"42": 1}
    assert reply.model == chat_model
    assert reply.id == "chatcmpl-fault"
    assert reply.usage is not None and reply.usage.prompt_tokens_details.cached_tokens == 4


def test_chat_relay_asks_for_usage_but_hides_it_when_not_asked(
    client: OpenAI, chat_model: str, upstream: FaultUpstream
) -> None:
    chunks = list(
        client.chat.completions.create(
            model=chat_model, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert upstream.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_responses_relay_keeps_unknown_items_and_tools(
    client: OpenAI, responses_model: str, upstream: FaultUpstream
) -> None:
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "patch it"}]},
        {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Done"},
    ]
    tools = [{"type": "custom", "name": "apply_patch", "format": {"type": "text"}}, {"type": "web_search"}]
    resp = client.responses.create(model=responses_model, input=items, tools=tools, stream=False)  # type: ignore[arg-type]
    sent = upstream.requests[-1]["body"]
    assert sent["input"] == items and sent["tools"] == tools and sent["model"] == "up-resp"
    assert resp.model == responses_model
    assert resp.output_text == "Hello from the fault upstream."


def test_responses_over_chat_translates_request(
    client: OpenAI, chat_model: str, upstream: FaultUpstream
) -> None:
    client.responses.create(
        model=chat_model,
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "21 C"},
        ],
        tools=[
            {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}
        ],
        tool_choice={"type": "function", "name": "get_weather"},
        reasoning={"effort": "high", "summary": "auto"},
        max_output_tokens=100,
        text={"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
    )
    sent = upstream.requests[-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in sent["messages"]] == ["system", "system", "user", "assistant", "tool"]
    assert sent["messages"][3]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert sent["messages"][4]["tool_call_id"] == "call_1"
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["reasoning_effort"] == "high"
    assert sent["max_completion_tokens"] == 100
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_responses_over_chat_reasoning_and_usage(
    client: OpenAI, chat_model: str, upstream: FaultUpstream
) -> None:
    upstream.queue("reasoning")
    with client.responses.stream(model=chat_model, input="think", reasoning={"effort": "low"}) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    assert final.output[0].type == "reasoning"
    assert final.output[0].summary[0].text == "Let me think."
    assert final.output_text == "Hello from the fault upstream."
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.input_tokens_details.cached_tokens) == (12, 4)


def test_responses_over_chat_parallel_tool_calls(
    client: OpenAI, chat_model: str, upstream: FaultUpstream
) -> None:
    upstream.queue("tools")
    with client.responses.stream(
        model=chat_model,
        input="weather in Paris and Tokyo",
        tools=[
            {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}
        ],
    ) as stream:
        final = stream.get_final_response()
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.call_id, json.loads(c.arguments)) for c in calls] == [
        ("call_a", {"city": "Paris"}),
        ("call_b", {"city": "Tokyo"}),
    ]


def test_chat_over_responses_translates_request_and_reasoning(
    client: OpenAI, responses_model: str, upstream: FaultUpstream
) -> None:
    upstream.queue("reasoning")
    chunks = list(
        client.chat.completions.create(
            model=responses_model,
            stream=True,
            stream_options={"include_usage": True},
            reasoning_effort="high",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "think"}],
            max_completion_tokens=50,
        )
    )
    sent = upstream.requests[-1]["body"]
    assert sent["instructions"] == "Be brief."
    assert sent["reasoning"]["effort"] == "high"
    assert sent["max_output_tokens"] == 50
    assert sent["store"] is False
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning == "Let me think." and text == "Hello from the fault upstream."
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens_details.reasoning_tokens == 3


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_reasoning_effort_is_validated_identically(client: OpenAI, chat_model: str, api: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        if api == "chat":
            client.chat.completions.create(
                model=chat_model, messages=[{"role": "user", "content": "x"}], reasoning_effort="xhigh"
            )
        else:
            client.responses.create(model=chat_model, input="x", reasoning={"effort": "xhigh"})
    assert caught.value.code == "unsupported_value"
    assert caught.value.param == ("reasoning_effort" if api == "chat" else "reasoning.effort")
    assert "'low', 'medium', 'high'" in caught.value.message


def test_stop_cannot_cross_to_a_responses_upstream(client: OpenAI, responses_model: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=responses_model, messages=[{"role": "user", "content": "x"}], stop=["."]
        )
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "stop"
