"""Secrets out of upstream text (unit level), and channel settings that cannot be sent: the scrubber's
rules, and HttpBackend against the fault upstream (no aicy process)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest

from aicy.domain.channels import Channel
from aicy.domain.models import ModelInfo
from aicy.errors import AicyError, UpstreamError
from aicy.types import GenerationRequest, Message
from aicy.upstream.failures import MAX_MESSAGE, UpstreamFailure, client_error_from_upstream, upstream_message
from aicy.upstream.http1 import Http1Client
from aicy.upstream.openai_http import HttpBackend, unusable_settings
from aicy.upstream.scrub import REDACTED, Scrubber, channel_secrets
from tests.fakes.fault_upstream import FaultUpstream

KEY = "chan-key-4f9e1c2b7a6d5e3f"
OTHER_KEY = "other-key-8b7c6d5e4f3a2b1c"
HEADER_SECRET = "hdr-secret-0a1b2c3d4e5f"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("scrub").start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123",
        '{"authorization": "Basic dXNlcjpwYXNz"}',
        "Incorrect API key provided: sk-proj-abcdefghijklmnop1234.",
        "sk-aicy-" + "Ab1_" * 11,
        "token: 9f8e7d6c5b4a39281706f5e4d3c2b1a0 is invalid",
        "api_key=AbCdEfGhIjKlMnOpQrStUvWx.",
        "'x-api-key': 'Zm9vYmFyYmF6cXV4MTIzNDU2'",
        "cannot reach https://user:p4ssw0rd@proxy.example/v1",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "gemini key AIzaSyA1234567890abcdefghijklmnopqrstuv",
    ],
)
def test_credential_shapes_are_redacted(text: str) -> None:
    scrubbed = Scrubber().text(text)
    assert REDACTED in scrubbed
    for secret in (
        "abcdefghijklmnopqrstuvwxyz0123",
        "dXNlcjpwYXNz",
        "abcdefghijklmnop1234",
        "Ab1_Ab1_",
        "9f8e7d6c5b4a",
        "AbCdEfGh",
        "Zm9vYmFy",
        "p4ssw0rd",
        "dozjgNry",
        "SyA1234567890",
    ):
        assert secret not in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "Bearer authentication is required.",
        "Bearer Authentication is required.",
        "max_tokens is too large: 100000. This model supports at most 4096 completion tokens.",
        "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
        "Invalid value for 'temperature': expected a number between 0 and 2, got 'hot'.",
        "The key 'foo' is not allowed; key: application/json",
        "Request req_1234567890abcdef failed; see https://platform.openai.com/docs/api-reference",
        "task-0123456789abcdefghijk is unknown",
        "Missing authorization header.",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Scrubber([KEY]).text(text) == text


def test_known_secrets_are_redacted_wherever_they_appear() -> None:
    channel = Channel(
        "c",
        "http://upstream.example/v1",
        api_keys=(KEY, "short"),
        extra_headers={"x-custom": HEADER_SECRET, "content-type": "application/json"},
    )
    secrets = channel_secrets(channel)
    assert secrets == {KEY, HEADER_SECRET}  # too short to be a secret; a well-known header's value
    scrub = Scrubber(secrets)
    text = f"bad key {KEY}!{HEADER_SECRET}, want application/json"
    assert scrub.text(text) == f"bad key {REDACTED}!{REDACTED}, want application/json"


def test_in_band_error_payloads_are_scrubbed_in_place() -> None:
    scrub = Scrubber([KEY])
    chunk: dict[str, Any] = {"error": {"message": f"key {KEY}", "code": KEY, "param": None}}
    scrub.payload(chunk)
    assert chunk == {"error": {"message": f"key {REDACTED}", "code": REDACTED, "param": None}}
    event: dict[str, Any] = {"type": "error", "sequence_number": 3, "message": f"Bearer {KEY}", "code": KEY}
    scrub.payload(event)
    assert event == {"type": "error", "sequence_number": 3, "message": f"Bearer {REDACTED}", "code": REDACTED}
    failed: dict[str, Any] = {
        "type": "response.failed",
        "response": {"status": "failed", "output": [], "error": {"code": "x", "message": KEY}},
    }
    scrub.payload(failed)
    assert failed["response"]["error"] == {"code": "x", "message": REDACTED}


def test_a_long_error_is_scrubbed_before_it_is_shortened() -> None:
    """A secret that straddles the cut must not leave its first half behind."""
    scrub = Scrubber([KEY])
    raw = orjson.dumps({"error": {"message": "x" * (MAX_MESSAGE - 10) + KEY + " tail"}})
    message = upstream_message(raw, scrub)
    assert len(message) <= MAX_MESSAGE
    assert KEY[:8] not in message
    html = b"<html><body>" + b"y" * (MAX_MESSAGE - 20) + KEY.encode() + b"</body></html>"
    error = client_error_from_upstream(400, html, scrub)
    assert len(error.message) <= MAX_MESSAGE and KEY[:8] not in error.message


def test_client_error_fields_are_scrubbed() -> None:
    raw = orjson.dumps({"error": {"message": f"no {KEY}", "type": KEY, "code": KEY, "param": f"h {KEY}"}})
    error = client_error_from_upstream(400, raw, Scrubber([KEY]))
    assert KEY not in orjson.dumps(error.body()).decode()
    assert error.status == 400 and error.param == f"h {REDACTED}"


def _run(work: Callable[[Http1Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        client = Http1Client()
        try:
            return await work(client)
        finally:
            await client.close()

    return asyncio.run(main())


def _channel(upstream: FaultUpstream, **fields: Any) -> Channel:
    settings: dict[str, Any] = {"api_keys": (KEY,), "extra_headers": {"x-custom": HEADER_SECRET}, **fields}
    return Channel("scrubbed", upstream.base_url, **settings)


def test_an_echoed_key_of_any_channel_never_leaves_the_backend(upstream: FaultUpstream) -> None:
    """One scrubber shared by all backends: an upstream echoing another channel's key is covered too."""
    scrub = Scrubber()
    upstream.state.echo_text = OTHER_KEY

    async def work(client: Http1Client) -> list[str]:
        HttpBackend(Channel("other", "http://other.example/v1", api_keys=(OTHER_KEY,)), client, scrub)
        backend = HttpBackend(_channel(upstream), client, scrub)
        seen = []
        upstream.queue("echo-400", "echo-500", "echo-stream", "echo-stream")
        with pytest.raises(AicyError) as refused:
            await backend.relay(BODY, streaming=False)
        seen.append(orjson.dumps(refused.value.body()).decode())
        with pytest.raises(UpstreamFailure) as failed:
            await backend.relay(BODY, streaming=False)
        seen += [failed.value.reason, str(failed.value), failed.value.error.message]
        assert failed.value.error.message.startswith("No upstream could serve this request right now (last: ")
        reply = await backend.relay(BODY, streaming=False)
        seen.append(orjson.dumps(await reply.json()).decode())
        await reply.close()
        stream = await backend.relay({**BODY, "stream": True}, streaming=True)
        seen.append(" ".join([orjson.dumps(batch).decode() async for batch in stream.batches()]))
        await stream.close()
        return seen

    try:
        seen = _run(work)
    finally:
        upstream.state.echo_text = ""
    assert len(seen) == 6
    for text in seen:
        for secret in (KEY, OTHER_KEY, HEADER_SECRET):
            assert secret not in text, text
    assert all(REDACTED in text for text in seen)


def test_a_translated_stream_error_is_raised_scrubbed(upstream: FaultUpstream) -> None:
    async def work(client: Http1Client) -> str:
        backend = HttpBackend(_channel(upstream, wire_api="responses"), client)
        upstream.queue("echo-failed")
        request = GenerationRequest("m", [Message(role="user", content="hi")])
        call = await backend.prepare(request, ModelInfo(id="m", context_window=1000, max_output_tokens=10))
        with pytest.raises(UpstreamError) as caught:
            async for _ in call.events():
                pass
        return orjson.dumps(caught.value.body()).decode()

    text = _run(work)
    assert KEY not in text and HEADER_SECRET not in text and REDACTED in text


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"extra_headers": {"x-custom": "a\r\nx-injected: 1"}}, "extra header 'x-custom'"),
        ({"extra_headers": {"x-custom": "值"}}, "not latin-1"),
        ({"extra_headers": {"x bad": "1"}}, "not a valid header name"),
        ({"api_keys": ("good-key-123456", "clé-secrète-123")}, "API key #2"),
        ({"api_keys": ("key-with\nnewline",)}, "API key #1"),
    ],
)
def test_settings_that_cannot_be_sent_are_a_channel_failure(
    upstream: FaultUpstream, fields: dict[str, Any], reason: str
) -> None:
    channel = _channel(upstream, **fields)
    assert reason in (unusable_settings(channel) or "")
    before = len(upstream.requests)

    async def work(client: Http1Client) -> list[UpstreamFailure]:
        backend = HttpBackend(channel, client)
        failures = []
        for attempt in (backend.relay(BODY, streaming=False), backend.probe()):
            with pytest.raises(UpstreamFailure) as caught:
                await attempt
            failures.append(caught.value)
        return failures

    for failure in _run(work):
        assert failure.auth, "a channel that cannot send a request leaves rotation at once"
        assert reason in failure.reason
        assert failure.error.status == 503 and failure.error.code == "upstream_unavailable"
        for value in (*channel.api_keys, *channel.extra_headers.values()):
            assert value not in failure.reason
    assert len(upstream.requests) == before, "nothing was sent"


def test_a_request_that_cannot_be_written_is_a_channel_failure_too(upstream: FaultUpstream) -> None:
    """Even past the settings check (a header the check cannot know of), writing the request fails as the
    channel's failure, not as an error of aicy."""

    class Sneaky(HttpBackend):
        def headers(self, streaming: bool) -> dict[str, str]:
            return {**super().headers(streaming), "x-late": "\u4e2d"}

    async def work(client: Http1Client) -> UpstreamFailure:
        backend = Sneaky(_channel(upstream), client)
        with pytest.raises(UpstreamFailure) as caught:
            await backend.relay(BODY, streaming=False)
        return caught.value

    failure = _run(work)
    assert failure.auth and "cannot send the request" in failure.reason


def test_good_settings_are_usable(upstream: FaultUpstream) -> None:
    assert unusable_settings(_channel(upstream, api_keys=("sk-abc", ""))) is None
    assert "base URL" in (unusable_settings(Channel("c", "ftp://x/v1")) or "")
