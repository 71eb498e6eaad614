"""Routing against a fault-injecting upstream: failover before the first byte, in-band errors after it,
and the circuit breaker opening and closing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI

from tests.fakes.fault_upstream import FaultUpstream
from tests.support import Operator

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def first() -> Iterator[FaultUpstream]:
    server = FaultUpstream("first").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def second() -> Iterator[FaultUpstream]:
    server = FaultUpstream("second").start()
    yield server
    server.stop()


@pytest.fixture
def routes(operator: Operator, first: FaultUpstream, second: FaultUpstream) -> str:
    """A model served by two channels: 'first' preferred (priority 10), 'second' as fallback."""
    first.queue()
    second.queue()
    first.requests.clear()
    second.requests.clear()
    model = operator.model(f"fo-{time.monotonic_ns()}")
    operator.channel(f"first-{model}", first.base_url, {model: "upstream-first"}, priority=10, timeout=1.0)
    operator.channel(f"second-{model}", second.base_url, {model: "upstream-second"}, priority=0)
    return model


def _served_by(client: OpenAI, model: str, **kwargs) -> str:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, **kwargs)
    raw.parse()
    return raw.headers["x-aicy-upstream-model"]


@pytest.mark.parametrize("fault", ["500", "429", "stall", "307"])
def test_failure_before_first_byte_fails_over(
    client: OpenAI, routes: str, first: FaultUpstream, second: FaultUpstream, fault: str
) -> None:
    first.state.stall = 3.0
    first.queue(fault)
    assert _served_by(client, routes) == "upstream-second"
    assert len(first.requests) == 1 and len(second.requests) == 1
    assert _served_by(client, routes) == "upstream-first"


def test_failover_for_streams_too(client: OpenAI, routes: str, first: FaultUpstream) -> None:
    first.queue("500")
    chunks = list(client.chat.completions.create(model=routes, messages=MESSAGES, stream=True))
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from the fault upstream."
    )


def test_model_name_is_the_customers(client: OpenAI, routes: str) -> None:
    reply = client.chat.completions.create(model=routes, messages=MESSAGES)
    assert reply.model == routes


def test_cut_after_first_byte_is_an_in_band_error(client: OpenAI, routes: str, first: FaultUpstream) -> None:
    first.queue("cut")
    stream = client.chat.completions.create(model=routes, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert "upstream" in caught.value.message.lower()


def test_cut_responses_stream_ends_with_response_failed(
    client: OpenAI, routes: str, first: FaultUpstream
) -> None:
    first.queue("cut")
    events = list(client.responses.create(model=routes, input="hi", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None


def test_all_channels_failing_is_a_clear_503(
    client: OpenAI, routes: str, first: FaultUpstream, second: FaultUpstream
) -> None:
    first.queue("500")
    second.queue("500")
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=routes, messages=MESSAGES)
    assert caught.value.status_code == 503
    assert caught.value.code == "upstream_unavailable"


def test_upstream_client_error_is_passed_on_without_failover(
    client: OpenAI, routes: str, first: FaultUpstream, second: FaultUpstream
) -> None:
    first.queue("400")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=routes, messages=MESSAGES)
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "messages"
    assert second.requests == []


def test_auth_failure_opens_the_breaker_and_the_probe_closes_it(
    client: OpenAI, operator: Operator, routes: str, first: FaultUpstream, second: FaultUpstream
) -> None:
    first.queue("401", "401", "401")
    assert _served_by(client, routes) == "upstream-second"
    assert operator.health(f"first-{routes}")["state"] != "closed"
    before = len(first.requests)
    assert _served_by(client, routes) == "upstream-second"
    assert len(first.requests) == before, "an open channel gets no customer traffic"
    first.queue()
    for _ in range(100):
        if operator.health(f"first-{routes}")["state"] == "closed":
            break
        time.sleep(0.1)
    assert operator.health(f"first-{routes}")["state"] == "closed"
    assert _served_by(client, routes) == "upstream-first"


def test_repeated_failures_open_the_breaker(
    client: OpenAI, operator: Operator, routes: str, first: FaultUpstream
) -> None:
    first.queue("500", "500", "500")
    for _ in range(3):
        assert _served_by(client, routes) == "upstream-second"
    assert operator.health(f"first-{routes}")["state"] in ("open", "half_open")
    assert operator.health(f"first-{routes}")["consecutive_failures"] >= 3


def test_a_finished_stream_gives_its_connection_back(
    client: OpenAI, routes: str, first: FaultUpstream
) -> None:
    """After ``[DONE]`` aicy reads the body's last bytes, so the next request reuses the connection (a new
    TLS connection to a real upstream costs tens of milliseconds)."""
    first.queue("slow-end", "slow-end", "slow-end")
    for _ in range(3):
        list(client.chat.completions.create(model=routes, messages=MESSAGES, stream=True))
    peers = [r["peer"] for r in first.requests]
    assert len(peers) == 3 and len(set(peers)) == 1
