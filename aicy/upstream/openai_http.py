"""A channel that speaks the OpenAI API over HTTP (OpenAI, vLLM, SGLang, llama.cpp's server, another aicy).

Everything that can fail is tried before the client sees a byte: the request is sent, the status checked
and, for streams, the first event read. Such failures raise :class:`UpstreamFailure` so that serving can
try the next channel. Later failures surface as errors inside the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from aicy.domain.channels import Channel
from aicy.domain.models import ModelInfo
from aicy.errors import AicyError, RateLimited, UpstreamError
from aicy.protocol import sse
from aicy.protocol.upstream_chat import ChatStreamDecoder, chat_request_body
from aicy.protocol.upstream_responses import ResponsesStreamDecoder, responses_request_body
from aicy.types import JSON, Event, GenerationRequest, Usage, WireApi
from aicy.upstream.dialect import adapt_body
from aicy.upstream.failures import UpstreamFailure, client_error_from_upstream, parse_retry_after
from aicy.upstream.http1 import Http1Client, Response, TransportError

log = logging.getLogger("aicy.upstream")

PATHS: dict[WireApi, str] = {"chat": "/chat/completions", "responses": "/responses"}
DRAIN_SECONDS = 1.0  # after ``[DONE]``, how long to wait for the end of the body so the connection is reused
TRANSPORT_ERRORS = (TransportError, TimeoutError)


class UpstreamLost(UpstreamError):
    """The upstream went away after the reply had started."""

    code = "upstream_connection_lost"


@dataclass(slots=True)
class UpstreamReply:
    """An upstream reply whose status was good. For streams, ``pending`` holds the events read so far."""

    response: Response
    streaming: bool
    decoder: sse.SSEDecoder = field(default_factory=sse.SSEDecoder)
    pending: deque[tuple[str | None, str]] = field(default_factory=deque)
    chunks: AsyncIterator[bytes] | None = None
    ended: bool = False  # the stream said ``[DONE]`` (or ended): what is left is the body's last bytes

    async def read_more(self) -> bool:
        """Read until at least one more event is pending; False at the end of the stream."""
        assert self.chunks is not None
        while not self.pending:
            try:
                chunk = await anext(self.chunks)
            except StopAsyncIteration:
                self.ended = True
                return False
            self.pending.extend(self.decoder.feed(chunk))
        return True

    async def batches(self) -> AsyncIterator[list[JSON]]:
        """Upstream SSE payloads as JSON, in batches: every event that one read brought (a fast upstream's
        whole reply may come in one read, and is then relayed in one write). Ends at ``[DONE]``."""
        try:
            while self.pending or await self.read_more():
                batch: list[JSON] = []
                while self.pending:
                    _, data = self.pending.popleft()
                    if data.startswith("[DONE]"):
                        self.ended = True
                        if batch:
                            yield batch
                        return
                    payload = orjson.loads(data)
                    if isinstance(payload, dict):
                        batch.append(payload)
                if batch:
                    yield batch
        except TRANSPORT_ERRORS as exc:
            raise UpstreamLost(f"The upstream connection was lost mid-reply: {type(exc).__name__}.") from None

    async def events(self) -> AsyncIterator[JSON]:
        """The same payloads one by one."""
        async for batch in self.batches():
            for payload in batch:
                yield payload

    async def json(self) -> JSON:
        try:
            body = orjson.loads(await self.response.read())
        except TRANSPORT_ERRORS as exc:
            raise UpstreamLost(f"The upstream connection was lost mid-reply: {type(exc).__name__}.") from None
        if not isinstance(body, dict):
            raise UpstreamLost("The upstream reply was not a JSON object.")
        return body

    async def close(self) -> None:
        """Give the connection back for the next request when the reply was read to its end (for a stream
        that said ``[DONE]``, its last bytes, the chunked terminator, are read first): a new connection costs
        the next request ~3 ms here, tens of ms with TLS. A reply cut short closes it."""
        response = self.response
        if self.streaming and self.ended and not response.at_eof:
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await asyncio.wait_for(response.read(), DRAIN_SECONDS)
        if response.at_eof:
            response.release()
        else:
            response.close()


class HttpBackend:
    """A channel as a :class:`aicy.upstream.base.Backend`."""

    def __init__(self, channel: Channel, client: Http1Client) -> None:
        self.channel = channel
        self.client = client
        self.url = channel.base_url.rstrip("/") + PATHS[channel.wire_api]
        self.name = channel.name
        self.wire_api: WireApi | None = channel.wire_api
        self._keys = itertools.cycle(channel.api_keys or ("",))

    def upstream_model(self, model: ModelInfo) -> str:
        return self.channel.upstream_model(model.id)

    async def prepare(self, request: GenerationRequest, model: ModelInfo) -> HttpCall:
        return await prepare_translated(self, request, model)

    def headers(self, streaming: bool) -> dict[str, str]:
        headers = {"content-type": "application/json", **self.channel.extra_headers}
        key = next(self._keys)
        if key:
            headers["authorization"] = f"Bearer {key}"
        if streaming:
            headers["accept"] = "text/event-stream"
        return headers

    async def relay(self, body: JSON, *, streaming: bool) -> UpstreamReply:
        """Send the customer's body as is (it speaks this channel's API)."""
        return await self.open(body, streaming=streaming)

    async def probe(self) -> None:
        """``GET /models``: any answer but an auth failure or a server error means the channel is back."""
        channel = self.channel
        headers = {k: v for k, v in self.headers(False).items() if k != "content-type"}
        try:
            reply = await self.client.request(
                "GET",
                channel.base_url.rstrip("/") + "/models",
                headers=headers,
                connect_timeout=channel.connect_timeout,
                read_timeout=channel.connect_timeout + 5,
            )
        except TRANSPORT_ERRORS as exc:
            raise self._fail(f"probe: {type(exc).__name__}", _unavailable()) from None
        status = reply.status
        reply.close()
        if status >= 400 and status not in (404, 405):
            raise self._fail(f"probe: HTTP {status}", _unavailable(), auth=status in (401, 403))

    async def open(self, body: JSON, *, streaming: bool) -> UpstreamReply:
        """Send ``body``; raise UpstreamFailure for anything another channel could fix."""
        try:
            response = await self.client.request(
                "POST",
                self.url,
                orjson.dumps(adapt_body(self.channel, body)),
                self.headers(streaming),
                connect_timeout=self.channel.connect_timeout,
                read_timeout=self.channel.timeout,
            )
        except TRANSPORT_ERRORS as exc:
            raise self._fail(f"{type(exc).__name__}: {exc}", _unavailable()) from None
        if response.status >= 300:
            try:
                raw = await response.read()
            except TRANSPORT_ERRORS:
                raw = b""
            response.release()  # kept when the error body was read to its end
            raise self._refused(response, raw)
        reply = UpstreamReply(response, streaming)
        if streaming:
            reply.chunks = response.chunks()
            try:
                if not await reply.read_more():
                    await reply.close()
                    raise self._fail("the stream ended before its first event", _unavailable())
            except TRANSPORT_ERRORS as exc:
                await reply.close()
                raise self._fail(f"first event: {type(exc).__name__}", _unavailable()) from None
        return reply

    def _fail(
        self, reason: str, error: AicyError, *, retry_after: float | None = None, auth: bool = False
    ) -> UpstreamFailure:
        log.warning("channel %s failed: %s", self.name, reason)
        return UpstreamFailure(self.name, reason, error, retry_after=retry_after, auth=auth)

    def _refused(self, response: Response, raw: bytes) -> Exception:
        status = response.status
        if status < 400:  # redirects are not followed: a POST must not silently become a GET elsewhere
            where = response.headers.get("location", "nowhere")
            return self._fail(
                f"HTTP {status}: the upstream redirects to {where}; check the base URL", _unavailable()
            )
        if status in (401, 403):
            return self._fail(f"HTTP {status}: the upstream refused our key", _unavailable(), auth=True)
        if status == 429:
            hint = parse_retry_after(response.headers)
            error = RateLimited(
                "The upstream is rate limiting; please retry shortly.",
                headers={"retry-after": str(int(hint or 1))},
            )
            return self._fail("HTTP 429", error, retry_after=hint)
        if status >= 500 or status == 408:
            return self._fail(
                f"HTTP {status}", _unavailable(), retry_after=parse_retry_after(response.headers)
            )
        return client_error_from_upstream(status, raw)  # the channel works; the request itself was refused


def _unavailable() -> AicyError:
    return AicyError(
        "No upstream could serve this request right now. Please retry shortly.",
        status=503,
        type="service_unavailable_error",
        code="upstream_unavailable",
    )


def replace_model(payload: dict[str, Any], model: str) -> None:
    """Show the customer's model id, as the customer asked for it, wherever the upstream names one."""
    if "model" in payload:
        payload["model"] = model
    inner = payload.get("response")
    if isinstance(inner, dict) and "model" in inner:
        inner["model"] = model


class StreamDecoder(Protocol):
    def feed(self, payload: JSON) -> list[Event]: ...

    def close(self) -> list[Event]: ...


@dataclass(slots=True)
class HttpCall:
    """A translated call: the upstream's stream (of the other API) decoded into neutral events."""

    reply: UpstreamReply
    decoder: StreamDecoder
    input_tokens: int = 0
    max_output_tokens: int = 0

    def usage_so_far(self) -> Usage | None:
        return None  # an upstream reports usage in its stream, if at all

    async def events(self) -> AsyncIterator[Event]:
        try:
            async for payload in self.reply.events():
                for event in self.decoder.feed(payload):
                    yield event
            for event in self.decoder.close():
                yield event
        finally:
            await self.reply.close()


async def prepare_translated(backend: HttpBackend, request: GenerationRequest, model: ModelInfo) -> HttpCall:
    """Send a neutral request to a channel of either API, always streamed (usage comes with the stream)."""
    upstream_model = backend.upstream_model(model)
    body: JSON
    decoder: StreamDecoder
    if backend.channel.wire_api == "chat":
        body = chat_request_body(
            request, upstream_model, stream=True, max_tokens_field=backend.channel.max_tokens_field
        )
        decoder = ChatStreamDecoder()
    else:
        body = responses_request_body(request, upstream_model, stream=True)
        decoder = ResponsesStreamDecoder()
    reply = await backend.open(body, streaming=True)
    return HttpCall(reply, decoder, max_output_tokens=request.max_output_tokens or model.max_output_tokens)
