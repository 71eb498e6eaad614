"""Usage shown is usage billed, when the upstream reports none: aicy counts the tokens with the model
family's tokenizer, shows the count in the reply and bills exactly that, marked estimated in the usage log.

Through the official SDK against a real ``aicy serve``, with channels to an upstream that never reports usage
(tests/fakes/usageless_upstream.py): Chat and Responses, streamed and not, relayed (same API) and translated.
The expected numbers are computed here, independently, from the documented rule with the tokenizer itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import quicktok
from openai import OpenAI

from tests.fakes.usageless_upstream import (
    CALL_ARGUMENTS,
    CALL_NAME,
    REASONING,
    TEXT,
    WORDS,
    UsagelessUpstream,
)
from tests.support import MODEL, AicyProcess

PRICE = {"input": 1_000_000, "cached_input": 500_000, "output": 2_000_000}
INSTRUCTIONS = "Be brief."
QUESTION = "Say hello, in a friendly way."
MESSAGES = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": QUESTION}]
# model id -> (channel wire API, the upstream's model name: the tokenizer's family)
MODELS = {
    "counted-chat": ("chat", "gpt-4o-mini"),
    "counted-responses": ("responses", "gpt-5-mini"),
    "counted-legacy": ("chat", "gpt-4-turbo"),
}


def tokens(text: str, encoding: str = "o200k_base") -> int:
    return int(quicktok.get_encoding(encoding).count(text))


def prompt_tokens(encoding: str = "o200k_base") -> int:
    """3 per message plus its role and text, 3 to prime the reply."""
    return sum(3 + tokens(m["role"], encoding) + tokens(m["content"], encoding) for m in MESSAGES) + 3


@pytest.fixture(scope="module")
def upstream() -> Iterator[UsagelessUpstream]:
    server = UsagelessUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def setup(admin: httpx.Client, upstream: UsagelessUpstream) -> Iterator[httpx.Client]:
    for model_id, (wire, upstream_model) in MODELS.items():
        body = {"id": model_id, "context_window": 8192, "max_output_tokens": 1024, "prices": PRICE}
        assert admin.post("/admin/models", json=body).status_code == 201
        channel = {
            "name": f"usageless-{model_id}",
            "base_url": upstream.base_url,
            "wire_api": wire,
            "models": {model_id: upstream_model},
        }
        assert admin.post("/admin/channels", json=channel).status_code == 201
    yield admin
    for model_id in MODELS:
        admin.delete(f"/admin/channels/usageless-{model_id}")
        admin.delete(f"/admin/models/{model_id}")


_accounts = iter(range(1_000_000))


@pytest.fixture
def account(setup: httpx.Client, aicy: AicyProcess) -> tuple[str, OpenAI]:
    """A fresh account (so its newest usage line is the request under test) and an SDK client for it."""
    name = f"counted-{next(_accounts)}"
    assert setup.post("/admin/accounts", json={"name": name}).status_code == 201
    assert setup.post(f"/admin/accounts/{name}/topup", json={"amount": 50_000_000}).status_code == 200
    reply = setup.post("/admin/keys", json={"account": name, "name": "k"})
    assert reply.status_code == 201, reply.text
    return name, OpenAI(base_url=aicy.base_url, api_key=reply.json()["key"], max_retries=0, timeout=60)


def billed(admin: httpx.Client, account: str, count: int = 1) -> dict[str, Any]:
    """The newest usage line of ``account``; a whole JSON reply goes out just before its bill is written."""
    deadline = time.monotonic() + 10
    while True:
        lines = admin.get("/admin/usage/lines", params={"account": account}).json()["data"]
        if len(lines) >= count or time.monotonic() > deadline:
            assert len(lines) == count, lines
            return dict(lines[0])
        time.sleep(0.05)


def cost(input_tokens: int, output_tokens: int) -> int:
    return -(-(input_tokens * PRICE["input"] + output_tokens * PRICE["output"]) // 1_000_000)


def chat(client: OpenAI, model: str, stream: bool, **extra: Any) -> Any:
    """The usage the SDK reports for one Chat call (a stream asks for its usage chunk)."""
    if not stream:
        reply = client.chat.completions.create(model=model, messages=MESSAGES, **extra)  # type: ignore[arg-type]
        return reply.usage
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
    )
    usages = [c.usage for c in chunks if c.usage is not None]
    assert len(usages) == 1 and chunks[-1].usage is not None and chunks[-1].choices == []
    return usages[0]


def responses(client: OpenAI, model: str, stream: bool, **extra: Any) -> Any:
    if not stream:
        return client.responses.create(model=model, instructions=INSTRUCTIONS, input=QUESTION, **extra).usage
    events = list(
        client.responses.create(model=model, instructions=INSTRUCTIONS, input=QUESTION, stream=True, **extra)
    )
    assert events[-1].type == "response.completed"
    return events[-1].response.usage


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    "model", ["counted-chat", "counted-responses"], ids=["chat-upstream", "responses-upstream"]
)
def test_chat_usage_shown_is_usage_billed(
    setup: httpx.Client, account: tuple[str, OpenAI], model: str, stream: bool
) -> None:
    name, client = account
    usage = chat(client, model, stream)
    expected = (prompt_tokens(), tokens(TEXT))
    assert (usage.prompt_tokens, usage.completion_tokens) == expected
    assert usage.total_tokens == sum(expected)
    line = billed(setup, name)
    assert line["estimated"] is True and line["status"] == "completed"
    assert (line["input_tokens"], line["output_tokens"], line["cached_tokens"]) == (*expected, 0)
    assert line["cost"] == cost(*expected)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    "model", ["counted-chat", "counted-responses"], ids=["chat-upstream", "responses-upstream"]
)
def test_responses_usage_shown_is_usage_billed(
    setup: httpx.Client, account: tuple[str, OpenAI], model: str, stream: bool
) -> None:
    name, client = account
    usage = responses(client, model, stream)
    expected = (prompt_tokens(), tokens(TEXT))
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (*expected, sum(expected))
    line = billed(setup, name)
    assert line["estimated"] is True and line["status"] == "completed"
    assert (line["input_tokens"], line["output_tokens"]) == expected
    assert line["cost"] == cost(*expected)


def test_stored_response_keeps_the_counted_usage(setup: httpx.Client, account: tuple[str, OpenAI]) -> None:
    _, client = account
    for model in ("counted-chat", "counted-responses"):
        created = client.responses.create(model=model, instructions=INSTRUCTIONS, input=QUESTION)
        stored = client.responses.retrieve(created.id)
        assert stored.usage is not None and created.usage is not None
        assert stored.usage.input_tokens == created.usage.input_tokens == prompt_tokens()


def test_a_stream_that_did_not_ask_for_usage_is_billed_the_same(
    setup: httpx.Client, account: tuple[str, OpenAI]
) -> None:
    name, client = account
    chunks = list(client.chat.completions.create(model="counted-chat", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    line = billed(setup, name)
    assert line["estimated"] is True
    assert (line["input_tokens"], line["output_tokens"]) == (prompt_tokens(), tokens(TEXT))


def test_the_family_picks_the_tokenizer(setup: httpx.Client, account: tuple[str, OpenAI]) -> None:
    """``gpt-4-turbo`` upstream: cl100k_base, whose counts differ from o200k_base's on this text."""
    name, client = account
    usage = chat(client, "counted-legacy", stream=False)
    expected = (prompt_tokens("cl100k_base"), tokens(TEXT, "cl100k_base"))
    assert (usage.prompt_tokens, usage.completion_tokens) == expected
    assert billed(setup, name)["input_tokens"] == expected[0]


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize(
    "model", ["counted-chat", "counted-responses"], ids=["chat-upstream", "responses-upstream"]
)
def test_tool_calls_and_reasoning_are_counted_as_output(
    setup: httpx.Client, upstream: UsagelessUpstream, account: tuple[str, OpenAI], api: str, model: str
) -> None:
    name, client = account
    call = {"type": "function", "function": {"name": CALL_NAME, "parameters": {"type": "object"}}}
    upstream.queue("tools")
    if api == "chat":
        usage = chat(client, model, stream=True, tools=[call])
        output, reasoning = usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens
    else:
        tool = {"type": "function", "name": CALL_NAME, "parameters": {"type": "object"}}
        usage = responses(client, model, stream=True, tools=[tool])
        output, reasoning = usage.output_tokens, usage.output_tokens_details.reasoning_tokens
    assert (output, reasoning) == (tokens(CALL_NAME) + tokens(CALL_ARGUMENTS), 0)
    assert billed(setup, name)["output_tokens"] == output

    upstream.queue("reasoning")
    thought = tokens("".join(REASONING))
    if api == "chat":
        usage = chat(client, model, stream=False)
        output, reasoning = usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens
    else:
        usage = responses(client, model, stream=False)
        output, reasoning = usage.output_tokens, usage.output_tokens_details.reasoning_tokens
    assert (output, reasoning) == (tokens(TEXT) + thought, thought)
    line = billed(setup, name, count=2)
    assert (line["output_tokens"], line["reasoning_tokens"], line["estimated"]) == (output, reasoning, True)


@pytest.mark.parametrize(
    "model", ["counted-chat", "counted-responses"], ids=["chat-upstream", "responses-upstream"]
)
def test_a_cut_stream_is_billed_for_the_counted_input_and_output_produced(
    setup: httpx.Client, upstream: UsagelessUpstream, account: tuple[str, OpenAI], model: str
) -> None:
    name, client = account
    upstream.queue("cut")
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    line = billed(setup, name)
    produced = tokens("".join(WORDS[:3]))
    assert (line["status"], line["estimated"]) == ("failed", True)
    assert (line["input_tokens"], line["output_tokens"]) == (prompt_tokens(), produced)
    assert line["cost"] == cost(prompt_tokens(), produced)


def test_reported_usage_is_not_estimated(setup: httpx.Client, account: tuple[str, OpenAI]) -> None:
    """A backend that reports usage (the embedded engine) is billed from its report, as before."""
    name, client = account
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)  # type: ignore[arg-type]
    assert reply.usage is not None
    line = billed(setup, name)
    assert line["estimated"] is False
    assert (line["input_tokens"], line["output_tokens"]) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
