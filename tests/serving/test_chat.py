"""Chat Completions through the official SDK against a real aicy process."""

from __future__ import annotations

import json

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from tests.support import MODEL, count_prompt_tokens, count_text_tokens

HELLO = [{"role": "user", "content": "Say hello in five words."}]


def test_create_returns_text_and_exact_usage(client: OpenAI) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
    ]
    reply = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=60)
    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert reply.model == MODEL
    assert reply.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count_prompt_tokens(messages)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    if choice.finish_reason == "stop":
        assert reply.usage.completion_tokens == count_text_tokens(choice.message.content)


def test_developer_assistant_and_tool_roles_are_accepted(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Answer in one word."},
            {"role": "user", "content": "What is the weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
            {"role": "user", "content": [{"type": "text", "text": "So, how is it?"}]},
        ],
        max_tokens=40,
    )
    assert reply.choices[0].message.content


def test_max_tokens_cuts_with_length(client: OpenAI) -> None:
    for limit_param in ("max_tokens", "max_completion_tokens"):
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Write a long story about a dragon."}],
            **{limit_param: 7},
        )
        assert reply.choices[0].finish_reason == "length"
        assert reply.usage is not None and reply.usage.completion_tokens == 7


def test_stop_sequence_ends_the_reply(client: OpenAI) -> None:
    messages = [{"role": "user", "content": "Count from 1 to 20, separated by commas."}]
    full = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=80)
    text = full.choices[0].message.content or ""
    assert "5" in text
    cut = client.chat.completions.create(
        model=MODEL, messages=messages, temperature=0, max_tokens=80, stop=["5"]
    )
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index("5")]


def test_seed_makes_sampling_repeatable(client: OpenAI) -> None:
    kwargs = dict(
        model=MODEL,
        messages=[{"role": "user", "content": "Invent a name for a cat."}],
        temperature=1.0,
        top_p=0.95,
        max_tokens=30,
    )
    first = client.chat.completions.create(seed=1234, **kwargs)  # type: ignore[call-overload]
    second = client.chat.completions.create(seed=1234, **kwargs)  # type: ignore[call-overload]
    assert first.choices[0].message.content == second.choices[0].message.content


def test_stream_with_usage_chunk(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}, max_tokens=60
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.role) == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-2].choices[0].finish_reason in ("stop", "length")
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage.prompt_tokens == count_prompt_tokens(HELLO)
    assert len({c.id for c in chunks}) == 1


def test_stream_without_usage_has_no_usage_chunk(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True, max_tokens=20))
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_stream_helper_final_completion(client: OpenAI) -> None:
    # The SDK's helper refuses a reply cut at max_tokens; a sentence end stops the small model's greeting
    # well before that, however it samples today.
    with client.chat.completions.stream(
        model=MODEL,
        messages=HELLO,
        max_tokens=200,
        stop=[".", "!", "?", "\n"],
        stream_options={"include_usage": True},
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "".join(deltas)
    assert final.usage is not None and final.usage.completion_tokens > 0


JSON_PROMPT = 'Reply with a JSON object with the key color, for example {"color": "red"}.'


def test_json_object_output_parses(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        response_format={"type": "json_object"},
        max_tokens=200,
        temperature=0,
        messages=[{"role": "user", "content": JSON_PROMPT}],
    )
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


class City(BaseModel):
    name: str
    population: int
    coastal: bool


def test_parse_with_pydantic_schema(client: OpenAI) -> None:
    reply = client.chat.completions.parse(
        model=MODEL,
        response_format=City,
        max_tokens=200,
        temperature=0,
        messages=[{"role": "user", "content": "Give me a city as JSON."}],
    )
    parsed = reply.choices[0].message.parsed
    assert isinstance(parsed, City)


def test_unknown_fields_are_ignored(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=10,
        extra_body={"client_metadata": {"x": 1}, "some_future_field": True, "user": "u1"},
    )
    assert reply.choices[0].message.content is not None


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"n": 2}, "n", "unsupported_value"),
        ({"temperature": 3}, "temperature", None),
        ({"max_tokens": 100000}, "max_tokens", "invalid_value"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", None),
        ({"reasoning_effort": "high"}, "reasoning_effort", "unsupported_parameter"),
        ({"extra_body": {"max_tokens": "ten"}}, "max_tokens", "invalid_type"),
        ({"extra_body": {"messages": [{"role": "wizard", "content": "hi"}]}}, "messages[0].role", None),
    ],
)
def test_bad_parameters_are_400_naming_the_param(
    client: OpenAI, kwargs: dict, param: str, code: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO, **kwargs)
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"
    if code:
        assert caught.value.code == code


def test_missing_messages_is_missing_required_parameter(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body={"model": MODEL}, cast_to=object)
    assert caught.value.param == "messages"
    assert caught.value.code == "missing_required_parameter"


def test_unknown_model_is_404_pointing_to_models(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-5x", messages=HELLO)
    assert caught.value.code == "model_not_found"
    assert "gpt-5x" in caught.value.message
    assert "/v1/models" in caught.value.message
