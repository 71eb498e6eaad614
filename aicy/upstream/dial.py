"""Opening connections for :mod:`aicy.upstream.http1`: names resolved and cached for a short time, Happy
Eyeballs across the addresses a name has, and the handshakes of proxies (``CONNECT``, SOCKS5).

Happy Eyeballs (RFC 8305): the addresses are tried in the resolver's order with the families interleaved; when
one has not connected within :data:`ATTEMPT_DELAY` the next is tried alongside it, and the first to connect
wins. An IPv6 address that swallows packets costs a quarter of a second, not the whole connect timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from collections.abc import Callable
from typing import Any

from aicy.upstream.proxy import Proxy

ATTEMPT_DELAY = 0.25  # RFC 8305's recommended "connection attempt delay"
MAX_CACHED_NAMES = 1024
MAX_PROXY_HEAD = 1 << 16  # a proxy's answer to CONNECT longer than this is not an answer

Address = tuple[int, Any]  # (family, sockaddr)


class DialError(OSError):
    """A connection could not be made (the message says where and why, never a credential)."""


class ProxyRefused(DialError):
    """The proxy answered but would not make the tunnel; ``credentials``: it refused ours."""

    def __init__(self, message: str, *, credentials: bool = False) -> None:
        super().__init__(message)
        self.credentials = credentials


class Resolver:
    """``getaddrinfo`` through the event loop, each name's answer kept ``ttl`` seconds (0: not at all).
    Lookups of one name at the same time share one query. IP literals are never looked up."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._cache: dict[tuple[str, int], tuple[float, list[Address]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[list[Address]]] = {}

    async def resolve(self, host: str, port: int) -> list[Address]:
        literal = _literal(host, port)
        if literal is not None:
            return [literal]
        loop = asyncio.get_running_loop()
        key = (host, port)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > loop.time():
            return cached[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[list[Address]] = loop.create_future()
        self._pending[key] = future
        try:
            addresses = interleave(await self.lookup(host, port))
            if not addresses:
                raise DialError(f"{host} has no address")
        except BaseException as exc:
            error = exc if isinstance(exc, DialError) else DialError(f"cannot resolve {host}: {exc}")
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: nobody else may be waiting
            if isinstance(exc, Exception):
                raise error from None
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(addresses)
        if self.ttl > 0:
            if len(self._cache) >= MAX_CACHED_NAMES:
                self._cache.clear()
            self._cache[key] = (loop.time() + self.ttl, addresses)
        return addresses

    async def lookup(self, host: str, port: int) -> list[Address]:
        """The name's addresses, as the system resolver orders them (tests override this)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def _literal(host: str, port: int) -> Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 6:
        return socket.AF_INET6, (host, port, 0, 0)
    return socket.AF_INET, (host, port)


def interleave(addresses: list[Address]) -> list[Address]:
    """Unique addresses, families alternating, starting with the resolver's first choice (RFC 8305 §4)."""
    seen: set[Any] = set()
    by_family: dict[int, list[Address]] = {}
    for family, sockaddr in addresses:
        if sockaddr[:2] not in seen:
            seen.add(sockaddr[:2])
            by_family.setdefault(family, []).append((family, sockaddr))
    queues = list(by_family.values())
    out: list[Address] = []
    while queues:
        for queue in list(queues):
            out.append(queue.pop(0))
            if not queue:
                queues.remove(queue)
    return out


async def _attempt(address: Address) -> socket.socket:
    family, sockaddr = address
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def _close_result(task: asyncio.Task[socket.socket]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()


async def connect_first(addresses: list[Address], where: str, delay: float = ATTEMPT_DELAY) -> socket.socket:
    """A connected socket to the first of ``addresses`` that answers (Happy Eyeballs); DialError naming
    ``where`` when none does. The caller bounds the whole with its connect timeout."""
    if len(addresses) == 1:
        try:
            return await _attempt(addresses[0])
        except OSError as exc:
            raise DialError(f"cannot connect to {where}: {_reason(exc)}") from None
    remaining = list(addresses)
    running: set[asyncio.Task[socket.socket]] = set()
    errors: list[str] = []
    try:
        while remaining or running:
            if remaining:
                running.add(asyncio.ensure_future(_attempt(remaining.pop(0))))
            done, running = await asyncio.wait(
                running, timeout=delay if remaining else None, return_when=asyncio.FIRST_COMPLETED
            )
            winner = None
            for task in done:
                error = task.exception()
                if error is None and winner is None:
                    winner = task.result()
                elif error is None:
                    task.result().close()
                else:
                    errors.append(_reason(error))
            if winner is not None:
                return winner
        raise DialError(f"cannot connect to {where}: {'; '.join(dict.fromkeys(errors))}")
    finally:
        for task in running:  # the losers, and every attempt when we were cancelled
            task.cancel()
            task.add_done_callback(_close_result)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class Handshake(asyncio.Protocol):
    """A connection's first words with a proxy, before the HTTP exchanges take it over."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def _until(self, ready: Callable[[], bool], what: str) -> None:
        while not ready():
            if self.closed:
                raise DialError(f"{what}: the proxy closed the connection")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    async def _exactly(self, size: int, what: str) -> bytes:
        await self._until(lambda: len(self.buffer) >= size, what)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def http_connect(self, host: str, port: int, proxy: Proxy) -> None:
        """``CONNECT host:port``; returns when the proxy said 2xx, the tunnel open."""
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"host: {authority}", "user-agent: aicy"]
        credentials = proxy.basic_authorization()
        if credentials is not None:
            lines.append(f"proxy-authorization: {credentials}")
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        what = f"CONNECT through the {proxy.where()}"

        def ended() -> bool:
            if len(self.buffer) > MAX_PROXY_HEAD:
                raise DialError(f"{what}: the proxy's answer has no end")
            return b"\r\n\r\n" in self.buffer

        await self._until(ended, what)
        head, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise DialError(f"{what}: the proxy's answer is not HTTP ({status_line[:80]!r})")
        status = int(parts[1])
        if status in (401, 407):  # 407 by the book; tinyproxy says 401 to wrong credentials
            said = "the proxy refused our credentials" if credentials else "the proxy wants credentials"
            raise ProxyRefused(f"{what}: HTTP {status}, {said}", credentials=True)
        if not 200 <= status < 300:
            raise ProxyRefused(f"{what}: the proxy answered HTTP {status} ({status_line[:120]})")
        if rest:
            raise DialError(f"{what}: the proxy sent bytes of its own after opening the tunnel")
        self.buffer.clear()

    async def socks5_connect(self, host: str, port: int, proxy: Proxy, address: str | None) -> None:
        """SOCKS5 (RFC 1928), user name and password (RFC 1929) when the proxy URL has them. ``address``: the
        upstream's IP resolved by aicy (``socks5://``); None sends the name for the proxy to resolve."""
        what = f"SOCKS5 through the {proxy.where()}"
        methods = b"\x00\x02" if proxy.username is not None else b"\x00"
        self._send(b"\x05" + bytes([len(methods)]) + methods)
        version, method = await self._exactly(2, what)
        if version != 5:
            raise DialError(f"{what}: the proxy does not speak SOCKS5")
        if method == 0xFF:
            said = "the proxy wants credentials" if proxy.username is None else "no login method in common"
            raise ProxyRefused(f"{what}: {said}", credentials=True)
        if method == 2:
            if proxy.username is None:
                raise ProxyRefused(f"{what}: the proxy wants credentials", credentials=True)
            user, password = proxy.username.encode(), (proxy.password or "").encode()
            self._send(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
            _, status = await self._exactly(2, what)
            if status != 0:
                raise ProxyRefused(f"{what}: the proxy refused our credentials", credentials=True)
        elif method != 0:
            raise DialError(f"{what}: the proxy chose an unknown login method ({method})")
        target = address or host
        try:
            ip = ipaddress.ip_address(target)
        except ValueError:
            name = target.encode("ascii")
            destination = b"\x03" + bytes([len(name)]) + name
        else:
            destination = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
        self._send(b"\x05\x01\x00" + destination + struct.pack("!H", port))
        _, reply, _, kind = await self._exactly(4, what)
        if reply != 0:
            raise ProxyRefused(f"{what}: {SOCKS_REPLIES.get(reply, f'error {reply}')}")
        if kind == 1:
            await self._exactly(4 + 2, what)
        elif kind == 4:
            await self._exactly(16 + 2, what)
        elif kind == 3:
            (length,) = await self._exactly(1, what)
            await self._exactly(length + 2, what)
        else:
            raise DialError(f"{what}: the proxy's reply has an unknown address type ({kind})")
        if self.buffer:
            raise DialError(f"{what}: the proxy sent bytes of its own after opening the tunnel")


SOCKS_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by the proxy's rules",
    3: "network unreachable (from the proxy)",
    4: "host unreachable (from the proxy)",
    5: "connection refused (by the upstream, to the proxy)",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


def close_quietly(transport: asyncio.BaseTransport | None) -> None:
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.close()
