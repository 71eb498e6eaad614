"""Log-probabilities through the official SDK against a real aicy: the embedded model's own values on both
APIs, streamed or not; refusals; and translation through a Chat or Responses upstream in both directions.

The embedded model's values are checked for what makes them real: greedy (temperature 0) samples the most
likely token, so its log-probability is the largest of its alternatives; probabilities are at most 1 and the
alternatives' sum too; the tokens spell the text; the same request gives the same numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.fakes.fault_upstream import WORDS, FaultUpstream, word_logprob
from tests.support import MODEL, Operator

LOGPROBS = "message.output_text.logprobs"
PROMPT = [{"role": "user", "content": "Name three fruits."}]


def check_entries(entries: list[Any], text: str, top: int) -> None:
    """SDK entries (Chat's, or a Responses output_text part's: the same fields) of a greedy reply."""
    assert entries
    assert "".join(e.token for e in entries) == text
    assert b"".join(bytes(e.bytes) for e in entries) == text.encode()
    for entry in entries:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == top
        assert entry.logprob == max(t.logprob for t in entry.top_logprobs) == entry.top_logprobs[0].logprob
        assert all(t.logprob <= 0 for t in entry.top_logprobs)
        assert sum(math.exp(t.logprob) for t in entry.top_logprobs) <= 1 + 1e-6


def numbers(entries: list[Any]) -> list[tuple[str, float, list[tuple[str, float]]]]:
    return [(e.token, e.logprob, [(t.token, t.logprob) for t in e.top_logprobs]) for e in entries]


def chat_logprobs(client: OpenAI, **fields: Any) -> tuple[str, list[Any]]:
    reply = client.chat.completions.create(
        model=MODEL, messages=PROMPT, temperature=0, max_tokens=8, logprobs=True, **fields
    )
    choice = reply.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    return choice.message.content or "", choice.logprobs.content


def test_chat_returns_the_models_log_probabilities(client: OpenAI) -> None:
    chat_logprobs(client, top_logprobs=5)  # the prompt into the cache: later reads of it match this one's
    text, entries = chat_logprobs(client, top_logprobs=5)
    check_entries(entries, text, 5)
    again_text, again = chat_logprobs(client, top_logprobs=5)
    assert again_text == text and numbers(again) == numbers(entries)

    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=PROMPT,
            temperature=0,
            max_tokens=8,
            logprobs=True,
            top_logprobs=5,
            stream=True,
        )
    )
    streamed: list[Any] = []
    for chunk in chunks:
        choice = chunk.choices[0]
        if choice.delta.content:
            assert choice.logprobs is not None and choice.logprobs.content is not None
            assert "".join(e.token for e in choice.logprobs.content) == choice.delta.content
            streamed += choice.logprobs.content
    assert numbers(streamed) == numbers(entries)  # each chunk carries its own tokens: the same numbers


def test_chat_stream_helper_collects_them(client: OpenAI) -> None:
    with client.chat.completions.stream(
        model=MODEL, messages=PROMPT, temperature=0, max_tokens=8, logprobs=True, top_logprobs=2
    ) as stream:
        for _ in stream:
            pass
        final = stream.current_completion_snapshot
    choice = final.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    check_entries(choice.logprobs.content, choice.message.content or "", 2)


def test_chat_logprobs_without_alternatives_and_without_asking(client: OpenAI) -> None:
    text, entries = chat_logprobs(client)
    assert "".join(e.token for e in entries) == text
    assert all(e.top_logprobs == [] and e.logprob <= 0 for e in entries)
    plain = client.chat.completions.create(model=MODEL, messages=PROMPT, temperature=0, max_tokens=4)
    assert plain.choices[0].logprobs is None


def test_responses_returns_the_models_log_probabilities(client: OpenAI) -> None:
    def create() -> Any:
        return client.responses.create(
            model=MODEL,
            input="Name three fruits.",
            temperature=0,
            max_output_tokens=16,
            include=[LOGPROBS],
            top_logprobs=4,
        )

    create()  # the prompt into the cache
    response = create()
    assert response.top_logprobs == 4
    part = response.output[0].content[0]
    assert part.type == "output_text" and part.logprobs is not None
    check_entries(part.logprobs, part.text, 4)
    assert numbers(create().output[0].content[0].logprobs) == numbers(part.logprobs)

    stream = client.responses.create(
        model=MODEL,
        input="Name three fruits.",
        temperature=0,
        max_output_tokens=16,
        include=[LOGPROBS],
        top_logprobs=4,
        stream=True,
    )
    deltas: list[Any] = []
    final = None
    for event in stream:
        if event.type == "response.output_text.delta":
            assert "".join(e.token for e in event.logprobs) == event.delta
            deltas += event.logprobs
        elif event.type == "response.output_text.done":
            assert numbers(event.logprobs) == numbers(deltas)
        elif event.type in ("response.completed", "response.incomplete"):
            final = event.response
    assert numbers(deltas) == numbers(part.logprobs)
    assert final is not None and numbers(final.output[0].content[0].logprobs) == numbers(part.logprobs)


def test_responses_stream_helper_and_stored_response_keep_them(client: OpenAI) -> None:
    with client.responses.stream(
        model=MODEL, input="Say hi.", temperature=0, max_output_tokens=16, include=[LOGPROBS], top_logprobs=1
    ) as stream:  # get_final_response() wants response.completed: the reply may be cut at 16 tokens
        terminal = [e for e in stream if e.type in ("response.completed", "response.incomplete")]
    response = terminal[-1].response  # type: ignore[union-attr]
    part = response.output[0].content[0]
    assert part.type == "output_text" and part.logprobs is not None
    check_entries(part.logprobs, part.text, 1)
    stored = client.responses.retrieve(response.id)
    assert numbers(stored.output[0].content[0].logprobs) == numbers(part.logprobs)  # type: ignore[union-attr]


def test_responses_top_logprobs_alone_asks_for_them_and_nothing_gives_none(client: OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="Say hi.", temperature=0, max_output_tokens=16, top_logprobs=2
    )
    part = response.output[0].content[0]
    assert part.type == "output_text" and part.logprobs
    assert all(len(e.top_logprobs) == 2 for e in part.logprobs)
    plain = client.responses.create(model=MODEL, input="Say hi.", max_output_tokens=16)
    assert plain.output[0].content[0].logprobs == []  # type: ignore[union-attr]
    assert plain.top_logprobs == 0


@pytest.mark.parametrize(
    ("api", "fields", "param", "code"),
    [
        ("chat", {"logprobs": True, "top_logprobs": 21}, "top_logprobs", "integer_above_max_value"),
        ("chat", {"top_logprobs": 3}, "top_logprobs", "invalid_value"),
        ("responses", {"top_logprobs": 21, "include": [LOGPROBS]}, "top_logprobs", "integer_above_max_value"),
        ("responses", {"top_logprobs": -1}, "top_logprobs", "integer_below_min_value"),
    ],
)
def test_out_of_range_is_a_400(
    client: OpenAI, api: str, fields: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        if api == "chat":
            client.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=4, **fields)
        else:
            client.responses.create(model=MODEL, input="hi", max_output_tokens=16, **fields)
    assert info.value.status_code == 400
    assert (info.value.param, info.value.code) == (param, code)


# through upstreams of the other API


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("logprobs").start()
    yield server
    server.stop()


def channel_model(operator: Operator, upstream: FaultUpstream, wire: str) -> str:
    upstream.queue()
    upstream.requests.clear()
    model = operator.model(f"lp-{wire}-{time.monotonic_ns()}")
    operator.channel(f"lp-{model}", upstream.base_url, {model: f"up-{wire}"}, wire_api=wire)
    return model


def expected(top: int, with_bytes: bool = True) -> list[tuple[str, float, list[tuple[str, float]]]]:
    entries = [word_logprob(n, top, with_bytes) for n in range(len(WORDS))]
    return [
        (e["token"], e["logprob"], [(t["token"], t["logprob"]) for t in e["top_logprobs"]]) for e in entries
    ]


@pytest.mark.parametrize("streaming", [False, True])
def test_responses_over_a_chat_upstream(
    client: OpenAI, operator: Operator, upstream: FaultUpstream, streaming: bool
) -> None:
    model = channel_model(operator, upstream, "chat")
    fields: dict[str, Any] = {"model": model, "input": "hi", "include": [LOGPROBS], "top_logprobs": 2}
    if streaming:
        with client.responses.stream(**fields) as stream:
            deltas = [e for e in stream if e.type == "response.output_text.delta"]
            response = stream.get_final_response()
        assert [(d.logprobs[0].token, d.logprobs[0].logprob) for d in deltas] == [
            (e[0], e[1]) for e in expected(2)
        ]
    else:
        response = client.responses.create(**fields)
    sent = upstream.requests[-1]
    assert sent["api"] == "chat"
    assert (sent["body"]["logprobs"], sent["body"]["top_logprobs"]) == (True, 2)
    part = response.output[0].content[0]
    assert part.type == "output_text" and part.logprobs is not None
    assert numbers(part.logprobs) == expected(2)
    assert [e.bytes for e in part.logprobs] == [list(w.encode()) for w in WORDS]


@pytest.mark.parametrize("streaming", [False, True])
def test_chat_over_a_responses_upstream(
    client: OpenAI, operator: Operator, upstream: FaultUpstream, streaming: bool
) -> None:
    model = channel_model(operator, upstream, "responses")
    fields: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if streaming:
        chunks = list(client.chat.completions.create(**fields, logprobs=True, top_logprobs=1, stream=True))
        entries = [
            e
            for c in chunks
            if c.choices and c.choices[0].logprobs
            for e in c.choices[0].logprobs.content or []
        ]
    else:
        reply = client.chat.completions.create(**fields, logprobs=True, top_logprobs=1)
        assert reply.choices[0].logprobs is not None
        entries = reply.choices[0].logprobs.content or []
    sent = upstream.requests[-1]
    assert sent["api"] == "responses"
    assert (sent["body"]["include"], sent["body"]["top_logprobs"]) == ([LOGPROBS], 1)
    assert numbers(entries) == expected(1)
    assert all(e.bytes is None for e in entries)  # aicy streams from the upstream, whose deltas have none


def test_relayed_requests_pass_untouched(client: OpenAI, operator: Operator, upstream: FaultUpstream) -> None:
    model = channel_model(operator, upstream, "chat")
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], logprobs=True, top_logprobs=2
    )
    assert upstream.requests[-1]["body"]["top_logprobs"] == 2
    assert reply.choices[0].logprobs is not None
    assert numbers(reply.choices[0].logprobs.content or []) == expected(2)
