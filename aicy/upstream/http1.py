"""A small HTTP/1.1 client for the calls aicy makes to upstreams.

aiohttp's client cost ~0.2 ms of Python per request on these machines (a POST to a local server and its
reply: 235–290 µs with aiohttp, 77 µs with a bare asyncio protocol), a fifth of all the time aicy added to a
request. Upstream calls need little: keep-alive connections per origin (TLS included), one request at a
time per connection, the reply's head, its body whole or as it arrives, and timeouts. That is all this
does. Parsing is httptools' (llhttp, the parser uvicorn serves aicy's own side with).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

IDLE_SECONDS = 15.0  # a pooled connection idle longer than this is closed rather than reused
MAX_BUFFERED = 1 << 20  # stop reading while this much of a reply waits for its reader
LARGE_BODY = 1 << 16  # a request body larger than this is not copied behind its head
USER_AGENT = "aicy"


class TransportError(Exception):
    """The exchange failed below HTTP: no connection, reset, closed early, a malformed reply, a timeout."""


class ReadTimeout(TransportError):
    """The upstream sent nothing for longer than the read timeout."""


class ClosedEarly(TransportError):
    """The upstream closed the connection before the reply ended."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@functools.lru_cache(maxsize=256)
def split_url(url: str) -> tuple[Origin, str]:
    """(origin, path with query) of an ``http``/``https`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname, port), path


def request_head(method: str, path: str, origin: Origin, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {origin.authority}", f"user-agent: {USER_AGENT}"]
    if method != "GET" or length:
        lines.append(f"content-length: {length}")
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Connection(asyncio.Protocol):
    """One connection: one exchange at a time, fed by httptools' callbacks."""

    def __init__(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.head: asyncio.Future[None] | None = None
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.until_close = False  # neither content-length nor chunked: the body ends with the connection
        self.error: TransportError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.answered = False  # some byte of the reply arrived
        self.last_read = 0.0
        self.read_timeout = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.paused = False

    def exchange(self, head: bytes, body: bytes, read_timeout: float) -> asyncio.Future[None]:
        """Send a request; the returned future is done when the reply's head has arrived."""
        assert self.transport is not None
        self.head = self.loop.create_future()
        self.status, self.headers, self.complete, self.error = 0, {}, False, None
        self.answered, self.until_close = False, False
        self.chunks.clear()
        self.buffered = 0
        self.read_timeout = read_timeout
        self.last_read = self.loop.time()
        if self.closed:  # dropped by the upstream after it was taken from the pool
            self.head.set_exception(ClosedEarly("the upstream closed the connection before the request"))
            return self.head
        self.timer = self.loop.call_at(self.last_read + read_timeout, self._check_timeout)
        if len(body) > LARGE_BODY:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head + body)
        return self.head

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio subclasses

    def data_received(self, data: bytes) -> None:
        if self.head is None:  # bytes on an idle connection (a server's 408 before it closes): not reusable
            self.close()
            return
        self.answered = True
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"malformed reply: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.head is not None and not self.complete:
            if self.until_close and self.head.done():
                self._finish()
            else:
                reason = f"{type(exc).__name__}: {exc}" if exc else "the upstream closed the connection"
                self._fail(ClosedEarly(f"{reason} before the reply ended"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.until_close = not chunked and "content-length" not in self.headers
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > MAX_BUFFERED and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        self._finish()

    # the exchange's state

    def _finish(self) -> None:
        self.complete = True
        self._stop_timer()
        self._wake()

    def _fail(self, error: TransportError) -> None:
        if self.error is None:
            self.error = error
        self._stop_timer()
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check_timeout(self) -> None:
        """Runs once per ``read_timeout`` at most: data arriving only moves ``last_read``."""
        self.timer = None
        if self.complete or self.closed or self.error is not None:
            return
        now = self.loop.time()
        if self.paused:  # the reader is slow, not the upstream: a whole interval again
            self.last_read = now
        if now - self.last_read < self.read_timeout:
            self.timer = self.loop.call_at(self.last_read + self.read_timeout, self._check_timeout)
            return
        self._fail(ReadTimeout(f"the upstream sent nothing for {self.read_timeout:g} s"))
        self.close()

    def take(self) -> bytes:
        data = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    async def more(self) -> bool:
        """Wait until some of the body is buffered; False once it has all been taken."""
        while not self.chunks:
            if self.error is not None:
                raise self.error
            if self.complete:
                return False
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return True

    def close(self) -> None:
        self.closed = True
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()


class Response:
    """A reply whose head has arrived. ``release`` (or ``close``) ends it; the body may be read first."""

    def __init__(self, pool: Http1Client, connection: _Connection) -> None:
        self._pool = pool
        self._connection = connection
        self.status = connection.status
        self.headers = connection.headers  # lower-case names; repeated headers joined with ", "
        self._done = False

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while await self._connection.more():
            parts.append(self._connection.take())
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: each item is everything received since the last one."""
        while await self._connection.more():
            yield self._connection.take()

    @property
    def at_eof(self) -> bool:
        return self._connection.complete and not self._connection.chunks

    def release(self) -> None:
        """Back to the pool when the reply was read to its end, else closed."""
        if self._done:
            return
        self._done = True
        connection = self._connection
        if connection.complete and connection.keep_alive and not connection.closed and not connection.chunks:
            self._pool.put_back(connection)
        else:
            connection.close()

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._connection.close()


class Http1Client:
    """Keep-alive connections per origin; ``request`` sends one request and returns its reply's head."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._idle: dict[Origin, deque[_Connection]] = {}

    async def request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
    ) -> Response:
        origin, path = split_url(url)
        head = request_head(method, path, origin, headers or {}, len(body))
        while True:
            connection = self._take_idle(origin)
            reused = connection is not None
            if connection is None:
                connection = await self._connect(origin, connect_timeout)
            try:
                await connection.exchange(head, body, read_timeout)
            except BaseException as exc:
                connection.close()
                if isinstance(exc, ClosedEarly) and reused and not connection.answered:
                    continue  # the upstream closed this idle connection as the request went out: once more
                raise
            return Response(self, connection)

    def put_back(self, connection: _Connection) -> None:
        connection.head = None
        connection.idle_since = connection.loop.time()
        idle = self._idle.setdefault(connection.origin, deque())
        while idle and (idle[0].closed or connection.idle_since - idle[0].idle_since >= IDLE_SECONDS):
            idle.popleft().close()
        idle.append(connection)

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to have been dropped
            if not connection.closed and connection.loop.time() - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        context = self._tls() if origin.scheme == "https" else None
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(origin, loop),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context else None,
                ),
                timeout,
            )
        except TimeoutError:
            raise TransportError(f"connecting to {origin.authority} took over {timeout:g} s") from None
        except OSError as exc:
            raise TransportError(f"cannot connect to {origin.authority}: {exc}") from None
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
