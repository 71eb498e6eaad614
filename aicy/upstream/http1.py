"""A small HTTP/1.1 client for the calls aicy makes to upstreams.

aiohttp's client cost ~0.2 ms of Python per request on these machines (a POST to a local server and its
reply: 235–290 µs with aiohttp, 77 µs with a bare asyncio protocol), a fifth of all the time aicy added to a
request. Upstream calls need little, and this gives only that, without losing the speed
(``python -m aicybench.clients`` measures it against aiohttp: 0.3× its CPU time per call, 0.13× over a bare
protocol's; bench/NOTES.md, issue 16):

- keep-alive connections per origin and route (TLS included), one request at a time per connection; at most
  ``max_connections_per_origin`` to one origin and ``max_connections`` in all (a request waits for a free one
  within its connect timeout); idle connections closed by a timer after ``idle_seconds``;
- connections opened by :mod:`aicy.upstream.dial`: names cached for ``dns_ttl_seconds``, Happy Eyeballs,
  internationalised names in their ``xn--`` form, through the route's proxy (HTTP with ``CONNECT`` for
  ``https`` upstreams, HTTPS, SOCKS5) or the environment's, with the route's TLS options (CA bundle, client
  certificate, verification off only when asked);
- the reply's head (1xx interim replies skipped), its body whole with a size cap or as it arrives, decoded
  when compressed (:mod:`aicy.upstream.decoding`);
- connect, write, read (between two reads) and total timeouts.

Parsing is httptools' (llhttp, the parser uvicorn serves aicy's own side with). Whatever goes wrong raises a
:class:`TransportError` that says what and where (a request that cannot even be written: ValueError), never
anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

import httptools

from aicy.upstream.decoding import ACCEPT_ENCODING, Decoder, DecodingError, decoder_for
from aicy.upstream.dial import (
    DialError,
    Handshake,
    ProxyRefused,
    Resolver,
    close_quietly,
    connect_first,
)
from aicy.upstream.proxy import EnvProxies, Proxy, ascii_host

MAX_BUFFERED = 1 << 20  # stop reading while this much of a reply waits for its reader
LARGE_BODY = 1 << 16  # a request body larger than this is not copied behind its head
USER_AGENT = "aicy"
MAX_TARGETS = 256  # URLs remembered per route (a channel uses two or three)


class TransportError(Exception):
    """The exchange failed below HTTP: no connection, reset, closed early, a malformed reply, a timeout.

    ``fatal``: the channel's own settings are at fault (its proxy refused our credentials, its TLS files
    cannot be read), so trying again cannot help."""

    fatal = False


class ReadTimeout(TransportError):
    """The upstream sent nothing for longer than the read timeout."""


class WriteTimeout(TransportError):
    """The upstream took none of the request for longer than the write timeout."""


class TotalTimeout(TransportError):
    """The whole exchange (connecting, sending, the reply to its last byte) took longer than allowed."""


class ClosedEarly(TransportError):
    """The upstream closed the connection before the reply ended."""


class BodyTooLarge(TransportError):
    """The reply's body is larger than the caller allows."""


class UnreadableBody(TransportError):
    """The reply's body is encoded in a way aicy cannot read, or its compressed data is corrupt."""


class SettingsError(TransportError):
    """The route's settings cannot be used (a TLS file that cannot be read)."""

    fatal = True


class ProxyError(TransportError):
    """The proxy would not carry the exchange."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True, slots=True)
class Limits:
    """The client's bounds (``aicy.settings`` holds an operator's values)."""

    max_connections: int = 1024
    max_connections_per_origin: int = 256
    idle_seconds: float = 15.0
    dns_ttl_seconds: float = 30.0
    max_body_bytes: int = 64 << 20  # callers' cap on a whole reply (the client enforces what it is given)
    max_error_body_bytes: int = 1 << 20  # callers' cap on what is read of an error reply


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """How to check an ``https`` upstream: ``ca_file`` replaces the system's trusted authorities (PEM);
    ``cert_file`` (and ``key_file``, unless the key is in the same file) is the client certificate shown;
    ``verify=False`` checks nothing (unsafe: anyone on the path can read and change the traffic)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """How requests reach their upstream: the channel's ``proxy`` (None: the environment's, if any),
    ``direct`` (no proxy whatever the environment says), its TLS options, and whether the client announces
    the encodings it can decode (False when the caller sends its own ``accept-encoding``)."""

    proxy: Proxy | None = None
    direct: bool = False
    tls: TlsOptions = field(default_factory=TlsOptions)
    accept_encoding: bool = True
    # URL: (endpoint, request target)
    targets: dict[str, tuple[_Endpoint, str]] = field(default_factory=dict, repr=False)


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
    """(origin, path with query) of an ``http``/``https`` URL; the host lower-cased, in IDNA form."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"the port of {url!r} is not a number from 0 to 65535") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in path for c in " \r\n\0"):
        raise ValueError("the URL's path has spaces or line breaks")
    return Origin(parts.scheme, ascii_host(parts.hostname), port), path


def _head(method: str, target: str, prefix: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    # each line ends with the only CR and LF it may have: more of either, or a NUL, is a header to refuse
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers) or "\0" in lines:
        _refuse(headers)
    if method != "GET" or length:
        prefix = f"{prefix}content-length: {length}\r\n"
    return f"{method} {target} HTTP/1.1\r\n{prefix}{lines}\r\n".encode("latin-1")


def _refuse(headers: Mapping[str, str]) -> NoReturn:
    """ValueError naming the first header that cannot be sent (a line break or a NUL in it)."""
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0"):
            raise ValueError(f"header {name!r} has a line break or a NUL")
    raise ValueError("a header has a line break or a NUL")


def request_head(method: str, path: str, origin: Origin, headers: Mapping[str, str], length: int) -> bytes:
    """A request's head as sent straight to ``origin`` (ValueError for a header that cannot be sent)."""
    return _head(method, path, f"host: {origin.authority}\r\nuser-agent: {USER_AGENT}\r\n", headers, length)


class _Pool:
    """The connections of one endpoint: idle ones (the most recent last), how many are open, who waits."""

    __slots__ = ("idle", "open", "waiters")

    def __init__(self) -> None:
        self.idle: deque[_Connection] = deque()
        self.open = 0  # open or being opened, idle ones included
        self.waiters: deque[asyncio.Future[None]] = deque()


class _Endpoint:
    """An origin reached one way (directly or through one proxy, with one TLS setup): what to dial, and
    what starts every request's head."""

    __slots__ = ("origin", "pool", "prefix", "proxy", "target", "tls")

    def __init__(self, origin: Origin, proxy: Proxy | None, route: Route, pool: _Pool) -> None:
        self.origin = origin
        self.proxy = proxy
        self.tls = route.tls
        self.pool = pool
        lines = [f"host: {origin.authority}", f"user-agent: {USER_AGENT}"]
        if route.accept_encoding:
            lines.append(f"accept-encoding: {ACCEPT_ENCODING}")
        self.target = ""
        if proxy is not None and origin.scheme == "http" and not proxy.tunnels_http:
            self.target = f"http://{origin.authority}"  # absolute form: the HTTP proxy forwards it
            credentials = proxy.basic_authorization()
            if credentials is not None:
                lines.append(f"proxy-authorization: {credentials}")
        self.prefix = "".join(line + "\r\n" for line in lines)

    def where(self) -> str:
        via = f" through the {self.proxy.where()}" if self.proxy is not None else ""
        return f"{self.origin.authority}{via}"


class _Connection(asyncio.Protocol):
    """One connection: one exchange at a time, fed by httptools' callbacks."""

    def __init__(self, endpoint: _Endpoint, client: Http1Client, loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint = endpoint
        self.client = client
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.counted = False  # holds a place in the pool's and the client's connection counts
        self.exchanges = 0
        self.idle_since = 0.0
        self.head: asyncio.Future[None] | None = None
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.interim = False  # the head being parsed is a 1xx, to be skipped
        self.until_close = False  # neither content-length nor chunked: the body ends with the connection
        self.error: TransportError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.answered = False  # some byte of the reply arrived
        self.last_read = 0.0
        self.read_timeout = 0.0
        self.deadline = math.inf
        self.timer: asyncio.TimerHandle | None = None  # the read and total timeouts' timer
        self.timer_due = math.inf
        self.write_timeout = 0.0
        self.write_left = 0
        self.write_timer: asyncio.TimerHandle | None = None
        self.paused = False

    def exchange(
        self, head: bytes, body: bytes, read_timeout: float, write_timeout: float, deadline: float
    ) -> asyncio.Future[None]:
        """Send a request; the returned future is done when the reply's head has arrived."""
        transport = self.transport
        assert transport is not None
        loop = self.loop
        self.head = future = loop.create_future()
        self.status, self.headers, self.complete, self.error = 0, {}, False, None
        self.answered = self.until_close = self.interim = False
        if self.chunks:  # never after a reply read to its end
            self.chunks.clear()
            self.buffered = 0
        self.exchanges += 1
        self.read_timeout, self.deadline = read_timeout, deadline
        self.last_read = now = loop.time()
        if self.closed:  # dropped by the upstream after it was taken from the pool
            future.set_exception(ClosedEarly("the upstream closed the connection before the request"))
            return future
        due = now + read_timeout if now + read_timeout < deadline else deadline
        if due < self.timer_due:  # else the timer an earlier exchange left fires first and re-arms itself
            if self.timer is not None:
                self.timer.cancel()
            self.timer, self.timer_due = loop.call_at(due, self._check_timeout), due
        if len(body) > LARGE_BODY:
            transport.writelines((head, body))
        else:
            transport.write(head + body)
        left = transport.get_write_buffer_size()
        if left:  # the upstream is not taking it as fast as we send: it must keep taking some
            self.write_timeout, self.write_left = write_timeout, left
            self.write_timer = loop.call_at(min(now + write_timeout, deadline), self._check_write)
        return future

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
        self._stop_timer()  # a timer left armed for the next exchange would hold a dead connection
        self._stop_write_timer()
        self._uncount()
        if self.head is not None and not self.complete:
            if self.until_close and self.head.done():
                self._finish()
            else:
                reason = f"{type(exc).__name__}: {exc}" if exc else "the upstream closed the connection"
                self._fail(ClosedEarly(f"{reason} before the reply ended"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        headers = self.headers
        if key in headers:
            headers[key] = f"{headers[key]}, {value.decode('latin-1')}"
        else:
            headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.headers = {}
            if status == 101:  # never asked for: the connection would now speak something else
                self._fail(TransportError("the upstream switched protocols (101), which aicy never asks for"))
                self.close()
                return
            self.interim = True  # 100 Continue, 103 Early Hints: the real reply follows
            return
        self.status = status
        headers = self.headers
        self.until_close = (
            "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "").lower()
        )
        head = self.head
        if head is not None and not head.done():
            head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > MAX_BUFFERED and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        if self.waiter is not None:
            self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.keep_alive = self.parser.should_keep_alive()
        self._finish()

    # the exchange's state

    def _finish(self) -> None:
        """The reply ended. The read timer stays armed for the next exchange (it finds nothing to do if it
        fires first): one timer per connection for a read timeout's worth of exchanges, not one each."""
        self.complete = True
        if self.write_timer is not None:
            self._stop_write_timer()
        if self.waiter is not None:
            self._wake()

    def _fail(self, error: TransportError) -> None:
        if self.error is None:
            self.error = error
        self._stop_timer()
        self._stop_write_timer()
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer, self.timer_due = None, math.inf

    def _stop_write_timer(self) -> None:
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None

    def _check_timeout(self) -> None:
        """Runs once per ``read_timeout`` at most: data arriving only moves ``last_read``. Between
        exchanges (the reply complete, or none sent yet) it stops: the next exchange arms it again."""
        self.timer, self.timer_due = None, math.inf
        if self.head is None or self.complete or self.closed or self.error is not None:
            return
        now = self.loop.time()
        if now >= self.deadline:
            self._fail(TotalTimeout("the exchange took longer than its total timeout"))
            self.close()
            return
        if self.paused:  # the reader is slow, not the upstream: a whole interval again
            self.last_read = now
        if now - self.last_read < self.read_timeout:
            due = min(self.last_read + self.read_timeout, self.deadline)
            self.timer, self.timer_due = self.loop.call_at(due, self._check_timeout), due
            return
        self._fail(ReadTimeout(f"the upstream sent nothing for {self.read_timeout:g} s"))
        self.close()

    def _check_write(self) -> None:
        self.write_timer = None
        if self.closed or self.error is not None or self.transport is None:
            return
        left = self.transport.get_write_buffer_size()
        if not left:
            return
        if left < self.write_left and self.loop.time() < self.deadline:  # it took some: another interval
            self.write_left = left
            due = min(self.loop.time() + self.write_timeout, self.deadline)
            self.write_timer = self.loop.call_at(due, self._check_write)
            return
        self._fail(WriteTimeout(f"the upstream took none of the request for {self.write_timeout:g} s"))
        self.close()

    def take(self) -> bytes:
        data = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    async def wait(self) -> None:
        """Until more of the body arrives, or the reply ends or fails."""
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

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
        self._stop_write_timer()
        if self.transport is not None:
            self.transport.close()
        self._uncount()

    def _uncount(self) -> None:
        if self.counted:
            self.counted = False
            self.client._closed(self.endpoint.pool)


class Response:
    """A reply whose head has arrived. ``release`` (or ``close``) ends it; the body may be read first.

    The body is decoded as its ``content-encoding`` says (``headers`` still show it as sent)."""

    __slots__ = ("_connection", "_decoder", "_done", "_pool", "headers", "status")

    def __init__(self, pool: Http1Client, connection: _Connection) -> None:
        self._pool = pool
        self._connection = connection
        self.status = connection.status
        self.headers = connection.headers  # lower-case names; repeated headers joined with ", "
        self._done = False
        encoding = connection.headers.get("content-encoding")
        self._decoder: Decoder | None = None
        if encoding is not None:
            try:
                self._decoder = decoder_for(encoding)
            except DecodingError as exc:
                connection.close()
                raise UnreadableBody(str(exc)) from None

    @property
    def content_length(self) -> int | None:
        text = self.headers.get("content-length")
        return int(text) if text is not None and text.isdigit() else None

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body; BodyTooLarge (and the connection closed) when it is over ``limit`` bytes."""
        if self._decoder is None:  # the common case, without an async generator
            connection = self._connection
            if limit is not None:
                declared = self.content_length
                if declared is not None and declared > limit:
                    self.close()
                    raise BodyTooLarge(f"the reply's body is {declared} bytes, over {limit}")
            chunks = connection.chunks  # one deque for the connection's life
            parts = []
            size = 0
            while True:  # connection.more() inlined: most replies are whole by now
                if chunks:
                    data = connection.take()
                    size += len(data)
                    if limit is not None and size > limit:
                        self.close()
                        raise BodyTooLarge(f"the reply's body is over {limit} bytes")
                    parts.append(data)
                elif connection.error is not None:
                    raise connection.error
                elif connection.complete:
                    return parts[0] if len(parts) == 1 else b"".join(parts)
                else:
                    await connection.wait()
        body, cut = await self.read_capped(limit)
        if cut:
            raise BodyTooLarge(f"the reply's body is over {limit} bytes")
        return body

    async def read_capped(self, limit: int | None) -> tuple[bytes, bool]:
        """At most ``limit`` bytes of the body, and whether more was left unread (the connection is then
        closed, never read to its end: an error body of gigabytes costs what it costs to read ``limit``)."""
        parts: list[bytes] = []
        size = 0
        async for piece in self.chunks():
            if limit is not None and size + len(piece) > limit:
                parts.append(piece[: limit - size])
                self.close()
                return b"".join(parts), True
            parts.append(piece)
            size += len(piece)
        return b"".join(parts), False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: each item is everything received since the last one (decoded: at most
        1 MiB at a time)."""
        connection, decoder = self._connection, self._decoder
        if decoder is None:
            while await connection.more():
                yield connection.take()
            return
        try:
            while await connection.more():
                for piece in decoder.decode(connection.take()):
                    yield piece
            tail = decoder.finish()
        except DecodingError as exc:
            self.close()
            raise UnreadableBody(str(exc)) from None
        if tail:
            yield tail

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
    """Keep-alive connections per endpoint; ``request`` sends one request and returns its reply's head.

    ``ssl_context`` is the context for ``https`` upstreams of routes without TLS options (default: the
    system's trusted authorities). ``proxies`` are the environment's (none unless given); ``resolver`` looks
    names up (and caches them for ``limits.dns_ttl_seconds``)."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        limits: Limits | None = None,
        proxies: EnvProxies | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self._idle_seconds = self.limits.idle_seconds
        self._env = proxies or EnvProxies()
        self._resolver = resolver or Resolver(self.limits.dns_ttl_seconds)
        self._default_route = Route()
        self._pools: dict[tuple[Any, ...], _Pool] = {}
        self._contexts: dict[tuple[bool, TlsOptions], ssl.SSLContext] = {}
        if ssl_context is not None:
            self._contexts[(False, TlsOptions())] = ssl_context
        self._open = 0  # connections open or being opened, all endpoints
        self._waiting: set[_Pool] = set()  # pools with requests waiting for a connection
        self._reaper: asyncio.TimerHandle | None = None

    async def request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        write_timeout: float = 60.0,
        total_timeout: float | None = None,
        route: Route | None = None,
    ) -> Response:
        """Send a request and wait for its reply's head. ``total_timeout`` bounds everything from here to
        the reply's last byte; ``connect_timeout`` bounds waiting for a free connection and opening one."""
        route = route or self._default_route
        found = route.targets.get(url)
        if found is None:
            found = self._target(route, url)
        endpoint, target = found
        head = _head(method, target, endpoint.prefix, headers or {}, len(body))
        deadline = asyncio.get_running_loop().time() + total_timeout if total_timeout else math.inf
        while True:
            connection = self._take_idle(endpoint.pool)
            if connection is None:
                connection = await self._connection(endpoint, connect_timeout, deadline)
            try:
                await connection.exchange(head, body, read_timeout, write_timeout, deadline)
            except BaseException as exc:
                connection.close()
                if isinstance(exc, ClosedEarly) and connection.exchanges > 1 and not connection.answered:
                    continue  # the upstream closed this idle connection as the request went out: once more
                raise
            return Response(self, connection)

    def _target(self, route: Route, url: str) -> tuple[_Endpoint, str]:
        origin, path = split_url(url)
        proxy = route.proxy
        if proxy is None and not route.direct:
            proxy = self._env.proxy_for(origin.scheme, origin.host, origin.port)
        tls = (
            route.tls if origin.scheme == "https" or (proxy is not None and proxy.scheme == "https") else None
        )
        key = (origin, proxy, tls)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool()
        endpoint = _Endpoint(origin, proxy, route, pool)
        found = (endpoint, endpoint.target + path)
        if len(route.targets) >= MAX_TARGETS:
            route.targets.clear()
        route.targets[url] = found
        return found

    # the pools

    def put_back(self, connection: _Connection) -> None:
        connection.head = None
        connection.idle_since = now = connection.loop.time()
        pool = connection.endpoint.pool
        pool.idle.append(connection)
        if self._reaper is None:
            self._reaper = connection.loop.call_at(now + self._idle_seconds, self._reap)
        if self._waiting:
            self._wake(pool)

    def _take_idle(self, pool: _Pool) -> _Connection | None:
        idle = pool.idle
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to have been dropped
            if not connection.closed and connection.loop.time() - connection.idle_since < self._idle_seconds:
                return connection
            connection.close()
        return None

    def _reap(self) -> None:
        """Close the connections idle for ``idle_seconds``, whether or not their origin is used again."""
        self._reaper = None
        loop = asyncio.get_running_loop()
        now, idle_for = loop.time(), self.limits.idle_seconds
        due = math.inf
        for pool in self._pools.values():
            idle = pool.idle
            while idle and (idle[0].closed or now - idle[0].idle_since >= idle_for):
                idle.popleft().close()
            if idle:
                due = min(due, idle[0].idle_since + idle_for)
        if due < math.inf:
            self._reaper = loop.call_at(due, self._reap)

    def _closed(self, pool: _Pool) -> None:
        """A connection of ``pool`` closed: its place is free."""
        pool.open -= 1
        self._open -= 1
        if self._waiting:
            self._wake(pool)

    def _wake(self, pool: _Pool) -> None:
        """Tell one waiting request to look again: of ``pool`` first, else of another pool (held back by
        the total limit)."""
        for candidate in (pool, *self._waiting):
            while candidate.waiters:
                waiter = candidate.waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    if not candidate.waiters:
                        self._waiting.discard(candidate)
                    return
            self._waiting.discard(candidate)

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection of any pool to make room under the total limit."""
        oldest: _Pool | None = None
        for pool in self._pools.values():
            if pool.idle and (oldest is None or pool.idle[0].idle_since < oldest.idle[0].idle_since):
                oldest = pool
        if oldest is None:
            return False
        oldest.idle.popleft().close()
        return True

    async def _place(self, pool: _Pool) -> _Connection | None:
        """An idle connection of ``pool``, or None with a place counted for a new one; waits while the
        limits are reached."""
        limits = self.limits
        while True:
            connection = self._take_idle(pool)
            if connection is not None:
                return connection
            if pool.open < limits.max_connections_per_origin and (
                self._open < limits.max_connections or self._evict_idle()
            ):
                pool.open += 1
                self._open += 1
                return None
            waiter = asyncio.get_running_loop().create_future()
            pool.waiters.append(waiter)
            self._waiting.add(pool)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake(pool)  # woken as we gave up: the turn goes to the next one
                else:
                    with_waiter_removed(pool, waiter)
                    if not pool.waiters:
                        self._waiting.discard(pool)
                raise

    async def _connection(self, endpoint: _Endpoint, timeout: float, deadline: float) -> _Connection:
        """A connection of ``endpoint``: an idle one freed meanwhile, or a new one, within ``timeout``."""
        loop = asyncio.get_running_loop()
        budget = min(timeout, deadline - loop.time())
        total = budget < timeout
        stage = "waiting for a free connection"
        placed = False
        try:
            async with asyncio.timeout(max(budget, 0)):
                reused = await self._place(endpoint.pool)
                if reused is not None:
                    return reused
                placed = True
                stage = "connecting"
                connection = await self._open_connection(endpoint, loop)
                connection.counted, placed = True, False  # the connection holds the place now
                return connection
        except TimeoutError:
            if stage.startswith("waiting"):
                limits = self.limits
                why = (
                    f"all {limits.max_connections_per_origin} connections to it are busy"
                    if endpoint.pool.open >= limits.max_connections_per_origin
                    else f"all {limits.max_connections} upstream connections are busy"
                )
                error: TransportError = TransportError(
                    f"no connection to {endpoint.where()} within {timeout:g} s: {why}"
                )
            else:
                error = TransportError(f"connecting to {endpoint.where()} took over {budget:g} s")
            if total:
                error = TotalTimeout(f"{error}; the exchange ran out of its total timeout")
            raise error from None
        except ProxyRefused as exc:
            raise ProxyError(str(exc), fatal=exc.credentials) from None
        except DialError as exc:
            raise TransportError(str(exc)) from None
        except ssl.SSLError as exc:
            raise TransportError(f"cannot connect to {endpoint.where()}: {exc}") from None
        except OSError as exc:
            raise TransportError(f"cannot connect to {endpoint.where()}: {exc}") from None
        finally:
            if placed:
                self._closed(endpoint.pool)

    async def _open_connection(self, endpoint: _Endpoint, loop: asyncio.AbstractEventLoop) -> _Connection:
        origin, proxy = endpoint.origin, endpoint.proxy
        upstream_tls = self._context(endpoint.tls, for_proxy=False) if origin.scheme == "https" else None

        def connection() -> _Connection:
            return _Connection(endpoint, self, loop)

        if proxy is None:
            addresses = await self._resolver.resolve(origin.host, origin.port)
            sock = await connect_first(addresses, origin.authority)
            _, made = await loop.create_connection(  # from here on the transport owns the socket
                connection, sock=sock, ssl=upstream_tls, server_hostname=origin.host if upstream_tls else None
            )
            return made
        proxy_tls = self._context(endpoint.tls, for_proxy=True) if proxy.scheme == "https" else None
        addresses = await self._resolver.resolve(proxy.host, proxy.port)
        sock = await connect_first(addresses, proxy.where())
        transport: asyncio.BaseTransport | None = None
        try:
            transport, shake = await loop.create_connection(
                Handshake, sock=sock, ssl=proxy_tls, server_hostname=proxy.host if proxy_tls else None
            )
            if proxy.scheme.startswith("socks5"):
                address = None
                if proxy.scheme == "socks5":  # aicy resolves the name; the proxy gets the address
                    address = (await self._resolver.resolve(origin.host, origin.port))[0][1][0]
                await shake.socks5_connect(origin.host, origin.port, proxy, address)
            elif origin.scheme == "https":
                await shake.http_connect(origin.host, origin.port, proxy)
            if upstream_tls is not None:
                transport = await loop.start_tls(
                    cast(asyncio.WriteTransport, transport), shake, upstream_tls, server_hostname=origin.host
                )
                if transport is None:
                    raise DialError(f"TLS with {origin.authority} through the {proxy.where()} did not start")
            made = connection()
            transport.set_protocol(made)
            made.connection_made(transport)
            return made
        except BaseException:
            close_quietly(transport)  # None: create_connection failed and closed the socket itself
            raise

    def _context(self, options: TlsOptions, *, for_proxy: bool) -> ssl.SSLContext:
        """The TLS context for ``options`` (built once). A proxy's is checked against the system's
        authorities plus the channel's CA file, and shows no client certificate."""
        key = (for_proxy, options)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = tls_context(options, for_proxy=for_proxy)
        return context

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for pool in self._pools.values():
            while pool.idle:
                pool.idle.pop().close()


def with_waiter_removed(pool: _Pool, waiter: asyncio.Future[None]) -> None:
    with contextlib.suppress(ValueError):
        pool.waiters.remove(waiter)


def _no_passphrase() -> bytes:
    raise ValueError("the key file is encrypted; aicy takes unencrypted keys only")


def tls_context(options: TlsOptions, *, for_proxy: bool = False) -> ssl.SSLContext:
    """A client TLS context for ``options``; SettingsError (fatal) naming the file that cannot be used."""
    try:
        if options.ca_file and not for_proxy:
            context = ssl.create_default_context(cafile=options.ca_file)
        else:
            context = ssl.create_default_context()
            if options.ca_file:
                context.load_verify_locations(cafile=options.ca_file)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise SettingsError(f"TLS settings: cannot use the CA file {options.ca_file}: {exc}") from None
    if options.cert_file and not for_proxy:
        try:
            context.load_cert_chain(options.cert_file, options.key_file or None, password=_no_passphrase)
        except (OSError, ssl.SSLError, ValueError) as exc:
            files = options.cert_file + (f" and {options.key_file}" if options.key_file else "")
            raise SettingsError(f"TLS settings: cannot use the client certificate {files}: {exc}") from None
    if not options.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
