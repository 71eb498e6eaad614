"""A channel that speaks the OpenAI API over HTTP (OpenAI, vLLM, SGLang, llama.cpp's server, another aicy).

Everything that can fail is tried before the client sees a byte: the request is sent, the status checked
and, for streams, the first event read. Such failures raise :class:`UpstreamFailure` so that serving can
try the next channel. Later failures surface as errors inside the stream. A channel whose settings cannot
be sent at all (a header value with a line break, a non-ASCII key) fails the same way, never with a 500.

Whatever an upstream says that leaves aicy on an error path (error replies, in-band error events and
chunks, failure reasons that are logged) is scrubbed of secrets first (:mod:`aicy.upstream.scrub`).
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
from aicy.upstream.channel_settings import PATHS, channel_route, unusable_settings
from aicy.upstream.dialect import adapt_body
from aicy.upstream.failures import (
    UpstreamFailure,
    client_error_from_upstream,
    parse_retry_after,
    unavailable,
    upstream_message,
)
from aicy.upstream.http1 import (
    BodyTooLarge,
    ClosedEarly,
    Http1Client,
    ProxyError,
    ReadTimeout,
    Response,
    Route,
    TotalTimeout,
    TransportError,
    UnreadableBody,
    WriteTimeout,
)
from aicy.upstream.scrub import Scrubber, channel_secrets

log = logging.getLogger("aicy.upstream")

DRAIN_SECONDS = 1.0  # after ``[DONE]``, how long to wait for the end of the body so the connection is reused
TRANSPORT_ERRORS = (TransportError, TimeoutError)
ERROR_EVENTS = frozenset({"error", "response.failed"})  # in-band errors of a Responses stream


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
    scrub: Scrubber = field(default_factory=Scrubber)  # for in-band errors only
    max_body: int = 64 << 20  # the largest whole reply, and the most bytes a stream may send between events
    since_event: int = 0  # bytes read since the last complete event

    async def read_more(self) -> bool:
        """Read until at least one more event is pending; False at the end of the stream. BodyTooLarge when
        the stream sends more than ``max_body`` bytes without completing an event."""
        assert self.chunks is not None
        while not self.pending:
            try:
                chunk = await anext(self.chunks)
            except StopAsyncIteration:
                self.ended = True
                return False
            events = self.decoder.feed(chunk)
            if events:
                self.pending.extend(events)
                self.since_event = 0
            else:
                self.since_event += len(chunk)
                if self.since_event > self.max_body:
                    raise BodyTooLarge(f"the stream sent over {self.max_body} bytes without ending an event")
        return True

    async def batches(self) -> AsyncIterator[list[JSON]]:
        """Upstream SSE payloads as JSON, in batches: every event that one read brought (a fast upstream's
        whole reply may come in one read, and is then relayed in one write). Ends at ``[DONE]``. An in-band
        error (a Chat ``error`` chunk, a Responses ``error`` or ``response.failed``) is scrubbed."""
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
                        if "error" in payload or payload.get("type") in ERROR_EVENTS:
                            self.scrub.payload(payload)
                        batch.append(payload)
                if batch:
                    yield batch
        except TRANSPORT_ERRORS as exc:
            raise UpstreamLost(f"The upstream connection was lost mid-reply: {type(exc).__name__}.") from None
        except orjson.JSONDecodeError:
            raise UpstreamError("The upstream sent a stream event that is not JSON.") from None

    async def events(self) -> AsyncIterator[JSON]:
        """The same payloads one by one."""
        async for batch in self.batches():
            for payload in batch:
                yield payload

    async def json(self) -> JSON:
        try:
            body = orjson.loads(await self.response.read(self.max_body))
        except BodyTooLarge:
            raise UpstreamError(
                f"The upstream's reply is larger than the {self.max_body} bytes aicy accepts."
            ) from None
        except UnreadableBody as exc:
            raise UpstreamError(f"The upstream's reply could not be read: {exc}.") from None
        except TRANSPORT_ERRORS as exc:
            raise UpstreamLost(f"The upstream connection was lost mid-reply: {type(exc).__name__}.") from None
        except orjson.JSONDecodeError:
            raise UpstreamLost("The upstream reply was not JSON.") from None
        if not isinstance(body, dict):
            raise UpstreamLost("The upstream reply was not a JSON object.")
        if "error" in body or body.get("status") == "failed":
            self.scrub.payload(body)
        return body

    async def close(self) -> None:
        """Give the connection back for the next request when the reply was read to its end (for a stream
        that said ``[DONE]``, its last bytes, the chunked terminator, are read first): a new connection costs
        the next request ~3 ms here, tens of ms with TLS. A reply cut short closes it."""
        response = self.response
        if self.streaming and self.ended and not response.at_eof:
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await asyncio.wait_for(response.read(self.max_body), DRAIN_SECONDS)
        if response.at_eof:
            response.release()
        else:
            response.close()


class HttpBackend:
    """A channel as a :class:`aicy.upstream.base.Backend`.

    ``scrub`` is shared by every channel's backend (the composition root gives them one), so that each
    learns every channel's secrets; by default a backend knows only its own.
    """

    def __init__(self, channel: Channel, client: Http1Client, scrub: Scrubber | None = None) -> None:
        self.channel = channel
        self.client = client
        self.url = channel.base_url.rstrip("/") + PATHS[channel.wire_api]
        self.name = channel.name
        self.wire_api: WireApi | None = channel.wire_api
        self._keys = itertools.cycle(channel.api_keys or ("",))
        self.scrub = scrub if scrub is not None else Scrubber()
        self.scrub.add(channel_secrets(channel))
        self.unusable = unusable_settings(channel)  # checked once here, not on every request
        self.route = channel_route(channel) if self.unusable is None else Route()
        self.limits = client.limits

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

    def check(self, request: GenerationRequest, api: WireApi) -> None:
        return None  # the upstream judges what it can do

    async def relay(self, body: JSON, *, streaming: bool) -> UpstreamReply:
        """Send the customer's body as is (it speaks this channel's API)."""
        return await self.open(body, streaming=streaming)

    async def probe(self) -> None:
        """``GET /models``: any answer but an auth failure or a server error means the channel is back."""
        channel = self.channel
        if self.unusable is not None:
            raise self._fail(f"probe: {self.unusable}", unavailable(), auth=True)
        headers = {k: v for k, v in self.headers(False).items() if k != "content-type"}
        try:
            reply = await self.client.request(
                "GET",
                channel.base_url.rstrip("/") + "/models",
                headers=headers,
                connect_timeout=channel.connect_timeout,
                read_timeout=channel.connect_timeout + 5,
                write_timeout=channel.write_timeout,
                total_timeout=channel.connect_timeout * 2 + 10,
                route=self.route,
            )
        except TRANSPORT_ERRORS as exc:
            raise self._transport_failure(exc, "probe: ") from None
        except (ValueError, UnicodeError) as exc:
            raise self._fail(f"probe: cannot send the request: {exc}", unavailable(), auth=True) from None
        except Exception as exc:  # whatever else: this channel's failure, never an error of aicy
            raise self._fail(f"probe: {type(exc).__name__}: {exc}", unavailable()) from None
        status = reply.status
        reply.close()
        if status >= 400 and status not in (404, 405):
            raise self._fail(f"probe: HTTP {status}", unavailable(), auth=status in (401, 403))

    async def open(self, body: JSON, *, streaming: bool) -> UpstreamReply:
        """Send ``body``; raise UpstreamFailure for anything another channel could fix."""
        if self.unusable is not None:
            raise self._fail(self.unusable, unavailable(), auth=True)
        data = orjson.dumps(adapt_body(self.channel, body))
        try:
            response = await self.client.request(
                "POST",
                self.url,
                data,
                self.headers(streaming),
                connect_timeout=self.channel.connect_timeout,
                read_timeout=self.channel.timeout,
                write_timeout=self.channel.write_timeout,
                total_timeout=self.channel.total_timeout,
                route=self.route,
            )
        except TRANSPORT_ERRORS as exc:
            raise self._transport_failure(exc) from None
        except (ValueError, UnicodeError) as exc:  # the request could not even be written: settings
            raise self._fail(f"cannot send the request: {exc}", unavailable(), auth=True) from None
        except Exception as exc:  # whatever else: this channel's failure, never an error of aicy
            raise self._fail(f"{type(exc).__name__}: {exc}", unavailable()) from None
        limits = self.limits
        if response.status >= 300:
            try:  # what an error reply says fits in max_error_body_bytes; the rest is never read
                raw, _ = await response.read_capped(limits.max_error_body_bytes)
            except TRANSPORT_ERRORS:
                raw = b""
            response.release()  # kept when the error body was read to its end
            raise self._refused(response, raw)
        declared = response.content_length
        if not streaming and declared is not None and declared > limits.max_body_bytes:
            response.close()
            raise self._fail(
                f"the reply's body is {declared} bytes, over the {limits.max_body_bytes} bytes aicy accepts",
                unavailable("the upstream's reply was too large"),
            )
        reply = UpstreamReply(response, streaming, scrub=self.scrub, max_body=limits.max_body_bytes)
        if streaming:
            reply.chunks = response.chunks()
            try:
                if not await reply.read_more():
                    await reply.close()
                    raise self._fail("the stream ended before its first event", unavailable())
            except TRANSPORT_ERRORS as exc:
                await reply.close()
                raise self._transport_failure(exc, "first event: ") from None
        return reply

    def _transport_failure(self, exc: BaseException, where: str = "") -> UpstreamFailure:
        fatal = isinstance(exc, TransportError) and exc.fatal
        return self._fail(
            f"{where}{type(exc).__name__}: {exc}", unavailable(transport_trouble(exc)), auth=fatal
        )

    def _fail(
        self, reason: str, error: AicyError, *, retry_after: float | None = None, auth: bool = False
    ) -> UpstreamFailure:
        reason = self.scrub.text(reason)  # logged and shown to operators: may quote the upstream
        log.warning("channel %s failed: %s", self.name, reason)
        return UpstreamFailure(self.name, reason, error, retry_after=retry_after, auth=auth)

    def _refused(self, response: Response, raw: bytes) -> Exception:
        """An upstream's error status: a channel failure, or (other 4xx) the customer's own error. What the
        upstream said goes on scrubbed: in the customer's error, and in the reason operators see."""
        status = response.status
        if status < 400:  # redirects are not followed: a POST must not silently become a GET elsewhere
            where = response.headers.get("location", "nowhere")
            return self._fail(
                f"HTTP {status}: the upstream redirects to {where}; check the base URL", unavailable()
            )
        if status == 407:  # from the channel's HTTP proxy, for an http:// upstream
            said = "the proxy wants other credentials (the channel's proxy, or HTTP_PROXY)"
            return self._fail(f"HTTP 407: {said}", unavailable(), auth=True)
        if status in (401, 403) or status == 429 or status >= 500 or status == 408:
            said = upstream_message(raw, self.scrub)
            last = f"HTTP {status}: {said}" if said else f"HTTP {status}"
        else:  # the channel works; the request itself was refused
            return client_error_from_upstream(status, raw, self.scrub)
        if status in (401, 403):
            return self._fail(f"{last} (the upstream refused our key)", unavailable(), auth=True)
        if status == 429:
            hint = parse_retry_after(response.headers)
            error = RateLimited(
                "The upstream is rate limiting; please retry shortly.",
                headers={"retry-after": str(int(hint or 1))},
            )
            return self._fail(last, error, retry_after=hint)
        return self._fail(last, unavailable(last), retry_after=parse_retry_after(response.headers))


def transport_trouble(exc: BaseException) -> str:
    """What went wrong below HTTP, for the customer: the kind of trouble, never an address."""
    if isinstance(exc, ReadTimeout | WriteTimeout | TotalTimeout | TimeoutError):
        return "the upstream did not answer in time"
    if isinstance(exc, ClosedEarly):
        return "the upstream closed the connection"
    if isinstance(exc, BodyTooLarge):
        return "the upstream's reply was too large"
    if isinstance(exc, UnreadableBody):
        return "the upstream's reply could not be read"
    if isinstance(exc, ProxyError):
        return "the upstream's proxy refused the connection"
    return "the upstream could not be reached"


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
    scrub: Scrubber = field(default_factory=Scrubber)

    def usage_so_far(self) -> Usage | None:
        return None  # an upstream reports usage in its stream, if at all

    async def events(self) -> AsyncIterator[Event]:
        """Neutral events; an error the upstream reported in its stream is raised scrubbed."""
        try:
            async for payload in self.reply.events():
                for event in self.decoder.feed(payload):
                    yield event
            for event in self.decoder.close():
                yield event
        except AicyError as exc:
            raise self.scrub.error(exc) from None
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
    return HttpCall(
        reply,
        decoder,
        max_output_tokens=request.max_output_tokens or model.max_output_tokens,
        scrub=backend.scrub,
    )
