"""What customers (and aicy's log) get when an upstream fails, through the OpenAI SDK against a real aicy:

- an upstream that echoes the request's headers (the channel's key) in its errors, in-band stream errors
  and response headers: on Chat and Responses, streamed and not, relayed and translated, no secret of any
  channel reaches the customer or the server log;
- an upstream 5xx that ends all attempts: the 503 says what the upstream said;
- a stored channel whose settings cannot be sent (a header with a line break): a channel failure, never
  a 500.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from aicy.app import catalog_admin
from aicy.domain.channels import Channel
from aicy.settings import Settings
from aicy.storage.db import create_engine
from aicy.upstream.scrub import REDACTED
from tests.fakes.fault_upstream import FaultUpstream
from tests.support import AicyProcess, Operator

KEY = "chan-key-" + secrets.token_hex(12)
HEADER_SECRET = "hdr-secret-" + secrets.token_hex(12)
OTHER_KEY = "other-key-" + secrets.token_hex(12)  # another channel's key, which the upstream echoes too
SECRETS = (KEY, HEADER_SECRET, OTHER_KEY)
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("echo").start()
    yield server
    server.stop()


@pytest.fixture
def models(operator: Operator, upstream: FaultUpstream) -> dict[str, str]:
    """A model per channel API, each served by one channel keyed with KEY (plus a secret extra header),
    and a channel of another model keyed with OTHER_KEY (never asked; its key is only echoed)."""
    upstream.queue()
    upstream.requests.clear()
    upstream.state.echo_text = OTHER_KEY
    stamp = time.monotonic_ns()
    served = {}
    for api in ("chat", "responses"):
        model = operator.model(f"sec-{api}-{stamp}")
        operator.channel(
            model,
            upstream.base_url,
            {model: f"up-{api}"},
            wire_api=api,
            api_keys=[KEY],
            extra_headers={"x-custom": HEADER_SECRET},
        )
        served[api] = model
    other = operator.model(f"sec-other-{stamp}")
    operator.channel(other, "http://127.0.0.1:9/v1", {other: other}, api_keys=[OTHER_KEY])
    return served


def _received(open_reply: Callable[[], AbstractContextManager[Any]]) -> tuple[int, str]:
    """Everything the customer received (status line, headers, body or SSE), as text."""
    try:
        with open_reply() as reply:
            status, headers, body = reply.status_code, reply.headers, reply.read().decode()
    except openai.APIStatusError as exc:
        status, headers, body = exc.status_code, exc.response.headers, exc.response.text
    return status, "\n".join(f"{k}: {v}" for k, v in headers.items()) + "\n\n" + body


def _call(client: OpenAI, api: str, model: str, stream: bool) -> Callable[[], AbstractContextManager[Any]]:
    if api == "chat":
        return lambda: client.chat.completions.with_streaming_response.create(
            model=model, messages=MESSAGES, stream=stream
        )
    return lambda: client.responses.with_streaming_response.create(model=model, input="hi", stream=stream)


@pytest.mark.parametrize("fault", ["echo-400", "echo-500", "echo-stream", "echo-failed"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("channel_api", ["chat", "responses"], ids=["chat-channel", "responses-channel"])
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_an_upstream_echoing_its_credentials_leaks_nothing(
    client: OpenAI,
    aicy: AicyProcess,
    upstream: FaultUpstream,
    models: dict[str, str],
    api: str,
    channel_api: str,
    stream: bool,
    fault: str,
) -> None:
    upstream.queue(fault)
    status, received = _received(_call(client, api, models[channel_api], stream))
    assert upstream.requests[-1]["headers"]["authorization"] == f"Bearer {KEY}", "the key was sent"
    for secret in SECRETS:
        assert secret not in received, received
        assert secret not in aicy.log()
    assert REDACTED in received, "the upstream's words are passed on, without its secrets"
    expected = {"echo-400": 400, "echo-500": 503}.get(fault)
    if expected is None:  # in-band: a relayed reply is the upstream's, a translated one aicy's error
        expected = 200 if stream or api == channel_api else 502
    assert status == expected, received
    if fault == "echo-500":
        assert "(last: HTTP 500: Invalid request." in received


def test_the_server_log_quotes_upstream_failures_scrubbed(
    client: OpenAI, aicy: AicyProcess, upstream: FaultUpstream, models: dict[str, str]
) -> None:
    upstream.queue("echo-500")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=models["chat"], messages=MESSAGES)
    line = next(
        (line for line in reversed(aicy.log().splitlines()) if f"channel {models['chat']} failed" in line),
        "",
    )
    assert "HTTP 500: Invalid request." in line and f"Bearer {REDACTED}" in line
    assert not any(secret in line for secret in SECRETS)


@pytest.fixture
def plain_model(operator: Operator, upstream: FaultUpstream) -> str:
    upstream.queue()
    upstream.state.echo_text = ""
    model = operator.model(f"err-{time.monotonic_ns()}")
    operator.channel(model, upstream.base_url, {model: "up"}, api_keys=[KEY])
    return model


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_5xx_that_ends_all_attempts_says_why(
    client: OpenAI, upstream: FaultUpstream, plain_model: str, api: str, stream: bool
) -> None:
    upstream.queue("500")
    with pytest.raises(openai.InternalServerError) as caught:
        if api == "chat":
            list(client.chat.completions.create(model=plain_model, messages=MESSAGES, stream=stream))
        else:
            client.responses.create(model=plain_model, input="hi", stream=stream)
    error = caught.value
    assert error.status_code == 503 and error.code == "upstream_unavailable"
    assert error.response.json()["error"]["message"] == (
        "No upstream could serve this request right now (last: HTTP 500: injected 500). Please retry shortly."
    )


def test_a_long_upstream_reason_is_shortened(
    client: OpenAI, upstream: FaultUpstream, plain_model: str
) -> None:
    upstream.state.echo_text = "z" * 2000
    upstream.queue("echo-500")
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model=plain_model, messages=MESSAGES)
    finally:
        upstream.state.echo_text = ""
    message = caught.value.message
    quoted = message.split("(last: ", 1)[1].rsplit("). Please retry shortly.", 1)[0]
    assert quoted.startswith("HTTP 500: Invalid request.") and quoted.endswith("…")
    assert len(quoted) <= 510 and KEY not in message


def _store_channel(aicy: AicyProcess, channel: Channel) -> None:
    """Write a channel straight into aicy's storage, past the checks of the admin API and the CLI."""

    async def put() -> None:
        settings = Settings(data_dir=aicy.data_dir)
        db = create_engine(settings.resolved_database_url)
        try:
            await catalog_admin(settings, db).store.put_channel(channel.to_json(reveal_keys=True))
        finally:
            await db.dispose()

    asyncio.run(put())


@pytest.mark.parametrize(
    "settings",
    [
        {"extra_headers": {"x-custom": "a\r\nx-injected: 1"}},
        {"extra_headers": {"x-custom": "\u4e2d\u6587"}},
        {"api_keys": ("cl\u00e9-secr\u00e8te-0123456789",)},
    ],
    ids=["line-break", "not-latin-1", "non-ascii-key"],
)
def test_a_stored_channel_that_cannot_be_sent_fails_over(
    client: OpenAI,
    aicy: AicyProcess,
    admin: httpx.Client,
    operator: Operator,
    upstream: FaultUpstream,
    settings: dict[str, Any],
) -> None:
    upstream.queue()
    upstream.requests.clear()
    model = f"bad-{time.monotonic_ns()}"
    bad = Channel(f"{model}-bad", upstream.base_url, models={model: "up-bad"}, priority=10, **settings)
    _store_channel(aicy, bad)
    operator.channels.append(bad.name)
    operator.model(model)  # the admin API reloads the channels: the stored one is in rotation now
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=model, messages=MESSAGES)
    assert caught.value.status_code == 503 and caught.value.code == "upstream_unavailable"
    health = operator.health(bad.name)
    assert health["state"] != "closed", "it leaves rotation at once"
    assert "unusable channel settings" in health["last_error"]
    assert upstream.requests == [], "nothing was sent"

    operator.channel(f"{model}-good", upstream.base_url, {model: "up-good"}, priority=0)
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    raw.parse()
    assert raw.headers["x-aicy-upstream-model"] == "up-good"
    for value in (*bad.api_keys, *bad.extra_headers.values()):
        assert value not in aicy.log()
