"""The shapes a generation's reply takes on the wire: an event stream, or JSON (padded while it waits).

Each implements :class:`aicy.serving.generation.Reply`: the generation pushes its bytes, and the shape
decides what a wait and a failure look like.

- **SSE** (``stream: true``): a wait opens the stream at once (the dialect's preamble: for Responses
  ``response.created`` and ``in_progress``); ``: keep-alive`` comments go out whenever the stream has been
  silent for ``keepalive_seconds`` (proxies with idle timeouts see bytes), and a Responses stream that
  opened early repeats ``response.in_progress`` every ``heartbeat_seconds`` until output begins (Codex's idle
  timer ignores comments). After the status line, errors go in-band.
- **JSON**: a request admitted at once gets its true status. One that waits past ``grace_seconds`` is
  committed to ``200`` and padded with blank lines (JSON parsers skip them) until its body. A failure after
  that commit that a retry could cure (the start deadline, upstream 5xx, a lost connection, timeouts)
  drops the connection without completing the body, so HTTP clients see a broken reply and SDKs retry;
  one a retry cannot cure (the upstream's 4xx for this request) is an error body under the 200.

Sends are serialised by a lock, so a keep-alive never falls between a chunk's bytes or ahead of an event
the generation already produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from aicy.errors import AicyError
from aicy.http.errors import render
from aicy.protocol.sse import KEEPALIVE

log = logging.getLogger("aicy.http")

SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}
PADDED_JSON_HEADERS = {
    "content-type": "application/json",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}
BLANK_LINE = b"\n"
CLIENT_CLOSED = 499


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class _Writer:
    """What both shapes share: the status line, serialised sends, a helper task, and the end."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, keepalive_seconds: float) -> None:
        self._scope, self._receive, self._send = scope, receive, send
        self._lock = asyncio.Lock()
        self._helper: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._last_sent = self._loop.time()
        self.keepalive_seconds = keepalive_seconds
        self.committed = False
        self.gone = False
        self.ended = False  # the reply is complete (or given up): a disconnect now ends nothing

    async def _status_line(self, base: dict[str, str], headers: dict[str, str]) -> None:
        self.committed = True
        await self._send({"type": "http.response.start", "status": 200, "headers": _raw({**base, **headers})})

    async def _chunk(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})
        self._last_sent = self._loop.time()

    async def _last(self, data: bytes) -> None:
        self.ended = True
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def _plain(self, response: Response) -> None:
        self.ended = True
        await response(self._scope, self._receive, self._send)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._helper = asyncio.ensure_future(work)

    async def _stop_helper(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None:
            helper.cancel()
            with contextlib.suppress(BaseException):
                await helper

    def close(self) -> None:
        """The response is over, however it ended."""
        self.ended = True
        if self._helper is not None:
            self._helper.cancel()
            self._helper = None


class SseReply(_Writer):
    def __init__(
        self, scope: Scope, receive: Receive, send: Send, keepalive_seconds: float, heartbeat_seconds: float
    ) -> None:
        super().__init__(scope, receive, send, keepalive_seconds)
        self.heartbeat_seconds = heartbeat_seconds
        self._heartbeat: Callable[[], bytes | None] | None = None
        self._last_event = self._last_sent

    async def waiting(
        self, headers: dict[str, str], preamble: bytes, heartbeat: Callable[[], bytes | None] | None
    ) -> None:
        self._heartbeat = heartbeat
        await self.start(headers)
        if preamble:
            await self.send(preamble)

    async def start(self, headers: dict[str, str]) -> None:
        if self.committed:
            return
        await self._status_line(SSE_HEADERS, headers)
        self._spawn(self._keep_alive())

    async def send(self, data: bytes) -> None:
        async with self._lock:
            await self._chunk(data)
        self._last_event = self._last_sent

    async def finish(self, data: bytes, headers: dict[str, str]) -> None:
        await self.start(headers)
        await self._stop_helper()
        await self._last(data)

    async def fail(self, error: AicyError, in_band: bytes) -> None:
        await self._stop_helper()
        if not self.committed:
            await self._plain(render(error))
            return
        await self._last(in_band)

    async def _keep_alive(self) -> None:
        interval, loop = self.keepalive_seconds, self._loop
        with contextlib.suppress(OSError):  # the client went away: the listener ends the response
            while True:
                delay = self._last_sent + interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                if self._lock.locked():  # the generation is sending to a slow reader: that is not silence
                    await asyncio.sleep(interval)
                    continue
                async with self._lock:
                    now = loop.time()
                    beat = self._heartbeat
                    if beat is not None and now - self._last_event >= self.heartbeat_seconds:
                        event = beat()
                        if event is not None:
                            self._last_event = now
                            await self._chunk(event)
                    await self._chunk(KEEPALIVE)


class JsonReply(_Writer):
    def __init__(
        self, scope: Scope, receive: Receive, send: Send, keepalive_seconds: float, grace_seconds: float
    ) -> None:
        super().__init__(scope, receive, send, keepalive_seconds)
        self.grace_seconds = grace_seconds
        self.dropped = False

    async def waiting(
        self, headers: dict[str, str], preamble: bytes, heartbeat: Callable[[], bytes | None] | None
    ) -> None:
        async def pad() -> None:
            await asyncio.sleep(self.grace_seconds)
            with contextlib.suppress(OSError):
                async with self._lock:
                    await self._status_line(PADDED_JSON_HEADERS, headers)
                while True:
                    await asyncio.sleep(self.keepalive_seconds)
                    async with self._lock:
                        await self._chunk(BLANK_LINE)

        self._spawn(pad())

    async def start(self, headers: dict[str, str]) -> None:
        return None  # a JSON reply's status line goes with its body

    async def send(self, data: bytes) -> None:
        raise TypeError("a JSON reply is sent whole")

    async def finish(self, data: bytes, headers: dict[str, str]) -> None:
        await self._stop_helper()
        if self.committed:
            await self._last(data)
        else:
            await self._plain(Response(data, headers=headers, media_type="application/json"))

    async def fail(self, error: AicyError, in_band: bytes) -> None:
        await self._stop_helper()
        if not self.committed:
            await self._plain(render(error))
        elif error.retryable:
            log.warning("dropping a committed JSON reply so the client retries: %s", error.code or error.type)
            self.dropped = True
            self.ended = True
        else:
            await self._last(orjson.dumps(error.body()))
