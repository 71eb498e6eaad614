"""The upstream client where real upstreams misbehave or resources run out, against scripted raw TCP
servers: interim 1xx replies, compression asked for or not (and what cannot be decoded), bodies of any size
(capped, never all in memory), write and total timeouts, connection limits, idle connections closed by a
timer, DNS answers cached, Happy Eyeballs past an IPv6 address that swallows packets, IDNA host names."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import resource
import socket
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import brotli
import orjson
import pytest

from aicy.domain.channels import Channel
from aicy.upstream.dial import Address, Resolver
from aicy.upstream.failures import UpstreamFailure
from aicy.upstream.http1 import (
    BodyTooLarge,
    Http1Client,
    Limits,
    ReadTimeout,
    TotalTimeout,
    TransportError,
    UnreadableBody,
    WriteTimeout,
)
from aicy.upstream.openai_http import HttpBackend, unusable_settings

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def serve(handler: Handler, work: Callable[[str, Any], Awaitable[Any]], **client: Any) -> Any:
    """Run ``work(url, client)`` against a server on 127.0.0.1 whose connections ``handler`` takes."""

    async def main() -> Any:
        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(guarded, "127.0.0.1", 0)
        http = Http1Client(**client)
        try:
            port = server.sockets[0].getsockname()[1]
            return await work(f"http://127.0.0.1:{port}/v1/x", http)
        finally:
            await http.close()
            server.close()

    return asyncio.run(main())


def replying(*answers: bytes) -> Handler:
    """Answer each request on a connection with the next of ``answers`` (the last one repeated)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = 0
        while True:
            await read_request(reader)
            writer.write(answers[min(number, len(answers) - 1)])
            await writer.drain()
            number += 1

    return handler


async def body_of(url: str, client: Http1Client, limit: int | None = None) -> tuple[int, bytes]:
    reply = await client.request("POST", url, b"{}")
    body = await reply.read(limit)
    reply.release()
    return reply.status, body


def test_interim_replies_are_skipped() -> None:
    """100 Continue and 103 Early Hints come before the real reply; they are not it."""
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"

    async def work(url: str, client: Http1Client) -> list[tuple[int, bytes, bool]]:
        out = []
        for _ in range(2):
            reply = await client.request("POST", url, b"{}")
            out.append((reply.status, await reply.read(), "link" in reply.headers))
            reply.release()
        return out

    assert serve(replying(interim + OK), work) == [(200, b"ok", False)] * 2


def test_a_switch_of_protocols_nobody_asked_for_is_an_error() -> None:
    switch = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    with pytest.raises(TransportError, match="101"):
        serve(replying(switch), body_of)


TEXT = b'{"choices": [{"message": {"content": "' + b"compressed " * 2000 + b'"}}]}'


def _compress(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "raw-deflate":
        squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return squeeze.compress(data) + squeeze.flush()
    if coding == "br":
        return bytes(brotli.compress(data))
    if coding == "gzip, br":
        return bytes(brotli.compress(gzip.compress(data)))
    raise AssertionError(coding)


def _encoded(coding: str, data: bytes, chunked: bool = False) -> bytes:
    body = _compress(coding, data)
    name = "deflate" if coding == "raw-deflate" else coding
    if not chunked:
        return (
            b"HTTP/1.1 200 OK\r\ncontent-encoding: %s\r\ncontent-length: %d\r\n\r\n"
            % (
                name.encode(),
                len(body),
            )
            + body
        )
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]  # tiny chunks: decoding as they come
    framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\ncontent-encoding: %s\r\ntransfer-encoding: chunked\r\n\r\n" % name.encode()
    return head + framed


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "br", "gzip, br"])
@pytest.mark.parametrize("chunked", [False, True])
def test_compressed_replies_are_decoded_asked_for_or_not(coding: str, chunked: bool) -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(_encoded(coding, TEXT, chunked))
            await writer.drain()

    async def work(url: str, client: Http1Client) -> list[bytes]:
        whole = (await body_of(url, client))[1]
        reply = await client.request("POST", url, b"{}")
        pieces = [piece async for piece in reply.chunks()]
        reply.release()
        return [whole, b"".join(pieces)]

    assert serve(handler, work) == [TEXT, TEXT]
    assert b"accept-encoding: gzip, deflate, br\r\n" in seen[0]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-encoding: zstd\r\ncontent-length: 4\r\n\r\n\x28\xb5\x2f\xfd", "zstd"),
        (b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 9\r\n\r\nnot gzip!", "corrupt"),
        (
            b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 20\r\n\r\n"
            + gzip.compress(TEXT)[:20],
            "ended before",
        ),
    ],
)
def test_what_cannot_be_decoded_is_an_error_not_garbage(reply: bytes, reason: str) -> None:
    with pytest.raises(UnreadableBody, match=reason):
        serve(replying(reply), body_of)


def test_a_decompression_bomb_is_capped_piece_by_piece() -> None:
    """200 MiB of zeros gzip to 200 KiB: decoding stops at the cap, in pieces of at most 1 MiB."""
    bomb = gzip.compress(b"\0" * (200 << 20), compresslevel=9)
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(bomb) + bomb

    async def work(url: str, client: Http1Client) -> tuple[int, type[Exception] | None]:
        reply = await client.request("POST", url, b"{}")
        largest = max([len(piece) async for piece in reply.chunks()][:5])
        reply.close()
        try:
            await body_of(url, client, limit=8 << 20)
        except BodyTooLarge as exc:
            return largest, type(exc)
        return largest, None

    largest, error = serve(replying(answer), work)
    assert largest <= 1 << 20 and error is BodyTooLarge


def _endless(status: bytes, kind: bytes = b"application/json", declared: int | None = None) -> Handler:
    """A reply whose body never ends (chunked), or declares ``declared`` bytes and sends for 30 s at most."""
    block = b"x" * 65536

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        framing = b"content-length: %d" % declared if declared is not None else b"transfer-encoding: chunked"
        writer.write(b"HTTP/1.1 %s\r\ncontent-type: %s\r\n%s\r\n\r\n" % (status, kind, framing))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # bounded: stops by itself
            writer.write(block if declared is not None else b"10000\r\n" + block + b"\r\n")
            await writer.drain()

    return handler


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_an_endless_body_is_read_only_up_to_the_cap() -> None:
    async def work(url: str, client: Http1Client) -> tuple[tuple[int, bool], float]:
        started = time.monotonic()
        reply = await client.request("POST", url, b"{}")
        with pytest.raises(BodyTooLarge):
            await reply.read(16 << 20)
        reply = await client.request("POST", url, b"{}")
        body, cut = await reply.read_capped(1 << 20)
        reply.release()
        return (len(body), cut), time.monotonic() - started

    before = _max_rss_mib()
    (size, cut), took = serve(_endless(b"500 Internal Server Error"), work)
    assert (size, cut) == (1 << 20, True) and took < 10
    assert _max_rss_mib() - before < 200, "the body was never held whole"


def _channel(url: str, **fields: Any) -> Channel:
    return Channel("edge", url.removesuffix("/x"), models={"m": "m"}, **fields)


BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("handler", "streaming", "expect"),
    [
        (_endless(b"500 Internal Server Error"), False, "HTTP 500: xxxx"),  # a truncated message
        (_endless(b"503 Service Unavailable", declared=10 << 30), False, "HTTP 503: xxxx"),  # its start
        (_endless(b"200 OK", declared=10 << 30), False, "over the 1048576 bytes"),  # declared: refused unread
        (_endless(b"200 OK", b"text/event-stream"), True, "without ending an event"),
    ],
)
def test_huge_upstream_bodies_are_channel_failures(handler: Handler, streaming: bool, expect: str) -> None:
    async def work(url: str, client: Http1Client) -> UpstreamFailure:
        backend = HttpBackend(_channel(url.replace("/x", "")), client)
        with pytest.raises(UpstreamFailure) as caught:
            await backend.relay(BODY, streaming=streaming)
        return caught.value

    limits = Limits(max_body_bytes=1 << 20, max_error_body_bytes=1 << 16)
    failure = serve(handler, work, limits=limits)
    assert expect in failure.reason and len(failure.reason) < 1000


def test_an_unannounced_huge_success_body_stops_at_the_cap() -> None:
    """Chunked, so nothing says its size before it comes: the reply is an upstream error at the cap."""
    from aicy.errors import UpstreamError

    async def work(url: str, client: Http1Client) -> str:
        backend = HttpBackend(_channel(url.replace("/x", "")), client)
        reply = await backend.relay(BODY, streaming=False)
        with pytest.raises(UpstreamError) as caught:
            await reply.json()
        await reply.close()
        return caught.value.message

    message = serve(_endless(b"200 OK"), work, limits=Limits(max_body_bytes=1 << 20))
    assert "larger than the 1048576 bytes" in message


def test_a_server_that_reads_nothing_is_a_write_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)  # never reads the request

    async def work(url: str, client: Http1Client) -> float:
        started = time.monotonic()
        with pytest.raises(WriteTimeout):
            await client.request("POST", url, b"x" * (128 << 20), write_timeout=0.5, read_timeout=30)
        return time.monotonic() - started

    assert serve(handler, work) < 8


def test_a_trickle_that_keeps_the_read_timeout_away_hits_the_total_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(100):
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)

    async def work(url: str, client: Http1Client) -> float:
        started = time.monotonic()
        reply = await client.request("POST", url, b"{}", read_timeout=1.0, total_timeout=0.6)
        with pytest.raises(TotalTimeout):
            async for _ in reply.chunks():
                pass
        return time.monotonic() - started

    assert 0.5 < serve(handler, work) < 2


def _answering(count: int, connections: list[int]) -> Handler:
    """Answer the first ``count`` requests of each connection, then read and say nothing."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        for _ in range(count):
            await read_request(reader)
            writer.write(OK)
            await writer.drain()
        await read_request(reader)
        await asyncio.sleep(30)

    return handler


@pytest.mark.parametrize("timeout", ["read", "total"])
def test_a_kept_connection_times_out_by_its_new_exchange_not_the_last_one(timeout: str) -> None:
    """The timer an exchange leaves armed (a read timeout of 600 s) must not stand for a later exchange on
    the same connection that allows less."""
    connections: list[int] = []

    async def work(url: str, client: Http1Client) -> float:
        reply = await client.request("POST", url, b"{}", read_timeout=600, total_timeout=3600)
        assert await reply.read() == b"ok"
        reply.release()
        started = time.monotonic()
        short = {"read_timeout": 0.3} if timeout == "read" else {"read_timeout": 600, "total_timeout": 0.3}
        with pytest.raises(ReadTimeout if timeout == "read" else TotalTimeout):
            await client.request("POST", url, b"{}", **short)  # type: ignore[arg-type]
        return time.monotonic() - started

    assert serve(_answering(1, connections), work) < 20
    assert len(connections) == 1  # the second exchange went out on the kept connection


def test_a_read_timer_that_fires_between_exchanges_leaves_the_connection_alone() -> None:
    connections: list[int] = []

    async def work(url: str, client: Http1Client) -> tuple[bytes, bytes]:
        first = await client.request("POST", url, b"{}", read_timeout=0.2)
        body = await first.read()
        first.release()
        await asyncio.sleep(0.6)  # the first exchange's timer comes due while the connection is idle
        second = await client.request("POST", url, b"{}", read_timeout=0.2)
        again = await second.read()
        second.release()
        with pytest.raises(ReadTimeout):  # and the timer armed again still times the next exchange out
            await client.request("POST", url, b"{}", read_timeout=0.2)
        return body, again

    assert serve(_answering(2, connections), work) == (b"ok", b"ok")
    assert len(connections) == 1


def _slow_ok(delay: float, open_now: list[int], most: list[int]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_now.append(1)
        most[0] = max(most[0], len(open_now))
        try:
            while True:
                await read_request(reader)
                await asyncio.sleep(delay)
                writer.write(OK)
                await writer.drain()
        finally:
            open_now.pop()

    return handler


def test_connections_per_origin_are_limited_and_waiters_served_in_turn() -> None:
    open_now: list[int] = []
    most = [0]

    async def work(url: str, client: Http1Client) -> list[tuple[int, bytes]]:
        return list(await asyncio.gather(*(body_of(url, client) for _ in range(6))))

    replies = serve(_slow_ok(0.1, open_now, most), work, limits=Limits(max_connections_per_origin=2))
    assert replies == [(200, b"ok")] * 6
    assert most[0] == 2


def test_no_free_connection_within_the_connect_timeout_is_a_clear_error() -> None:
    async def work(url: str, client: Http1Client) -> str:
        held = await client.request("POST", url, b"{}")  # its body is never read: the connection stays busy
        try:
            with pytest.raises(TransportError) as caught:
                await client.request("POST", url, b"{}", connect_timeout=0.3)
            return str(caught.value)
        finally:
            held.close()

    reason = serve(replying(OK), work, limits=Limits(max_connections_per_origin=1))
    assert "connections to it are busy" in reason


def test_the_total_limit_closes_another_origins_idle_connection() -> None:
    async def work(url: str, client: Http1Client) -> list[tuple[int, bytes]]:
        other = url.replace("127.0.0.1", "localhost")  # the same server, another origin
        return [await body_of(url, client), await body_of(other, client), await body_of(url, client)]

    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await replying(OK)(reader, writer)

    assert serve(handler, work, limits=Limits(max_connections=1)) == [(200, b"ok")] * 3
    assert len(connections) == 3


def test_idle_connections_are_closed_by_a_timer() -> None:
    closed_at: list[float] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await replying(OK)(reader, writer)
        finally:
            closed_at.append(time.monotonic())

    async def work(url: str, client: Http1Client) -> float:
        await body_of(url, client)
        released = time.monotonic()
        await asyncio.sleep(0.8)  # no other request: only the timer can close it
        return released

    released = serve(handler, work, limits=Limits(idle_seconds=0.3))
    assert closed_at and 0.2 < closed_at[0] - released < 0.75


class Names(Resolver):
    def __init__(self, names: dict[str, list[Address]], ttl: float = 30.0) -> None:
        super().__init__(ttl)
        self.names = names
        self.lookups: list[str] = []

    async def lookup(self, host: str, port: int) -> list[Address]:
        self.lookups.append(host)
        return [(family, (address[0], port, *address[2:])) for family, address in self.names[host]]


LOCAL = [(socket.AF_INET, ("127.0.0.1", 0))]
CLOSE_AFTER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"


@pytest.mark.parametrize(("ttl", "lookups"), [(30.0, 1), (0.0, 3)])
def test_dns_answers_are_cached_for_their_ttl(ttl: float, lookups: int) -> None:
    resolver = Names({"upstream.test": LOCAL}, ttl=ttl)

    async def work(url: str, client: Http1Client) -> list[tuple[int, bytes]]:
        named = url.replace("127.0.0.1", "upstream.test")
        return [await body_of(named, client) for _ in range(3)]  # each on a new connection

    assert serve(replying(CLOSE_AFTER), work, resolver=resolver) == [(200, b"ok")] * 3
    assert resolver.lookups == ["upstream.test"] * lookups


def test_idna_host_names_go_out_in_ascii() -> None:
    resolver = Names({"xn--bcher-kva.test": LOCAL})
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()

    async def work(url: str, client: Http1Client) -> tuple[int, bytes]:
        return await body_of(url.replace("127.0.0.1", "Bücher.test"), client)

    assert serve(handler, work, resolver=resolver) == (200, b"ok")
    assert b"\r\nhost: xn--bcher-kva.test:" in heads[0]


def _blackhole_v6(port: int) -> list[socket.socket]:
    """[::1]:port that swallows connection attempts: a listener whose queue is full drops new SYNs."""
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        listener.bind(("::1", port))
    except OSError as exc:
        listener.close()
        pytest.skip(f"no IPv6 loopback here: {exc}")
    listener.listen(0)
    fillers = [listener]
    for _ in range(4):
        filler = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("::1", port))
        fillers.append(filler)
    time.sleep(0.1)
    probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(("::1", port))
        answered = True
    except OSError:
        answered = False
    finally:
        probe.close()
    if answered:
        for sock in fillers:
            sock.close()
        pytest.skip("this kernel answers connections past a full listen queue: no black hole to test with")
    return fillers


def test_happy_eyeballs_goes_past_an_ipv6_address_that_swallows_packets() -> None:
    """The name's first address (IPv6) never answers; its IPv4 address does. The request takes about the
    0.25 s attempt delay, not the 5 s connect timeout; a name with only the silent address fails at the
    timeout with a clear reason."""

    async def main() -> tuple[float, float, str]:
        server = await asyncio.start_server(replying(OK), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        holes = await asyncio.to_thread(_blackhole_v6, port)
        v6 = (socket.AF_INET6, ("::1", 0, 0, 0))
        resolver = Names({"dual.test": [v6, *LOCAL], "v6only.test": [v6]})
        client = Http1Client(resolver=resolver)
        try:
            started = time.monotonic()
            reply = await client.request("GET", f"http://dual.test:{port}/v1/x", connect_timeout=5)
            assert await reply.read() == b"ok"
            reply.release()
            dual = time.monotonic() - started
            started = time.monotonic()
            with pytest.raises(TransportError) as caught:
                await client.request("GET", f"http://v6only.test:{port}/v1/x", connect_timeout=1)
            return dual, time.monotonic() - started, str(caught.value)
        finally:
            await client.close()
            server.close()
            for sock in holes:
                sock.close()

    dual, alone, reason = asyncio.run(main())
    assert dual < 2, f"took {dual:.2f} s: the silent IPv6 address held the connection up"
    assert 0.9 < alone < 3 and "took over 1 s" in reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"extra_headers": {"x-custom": "a\x01b"}}, "control characters"),
        ({"extra_headers": {"Content-Length": "5"}}, "set by aicy itself"),
        ({"proxy": "ftp://u:secretpw@proxy:1"}, "the proxy URL must start with"),
    ],
)
def test_settings_that_cannot_be_sent_are_named(fields: dict[str, Any], reason: str) -> None:
    found = unusable_settings(Channel("c", "http://127.0.0.1:9/v1", **fields)) or ""
    assert reason in found and "secretpw" not in found


def test_a_request_to_an_unreachable_proxy_is_a_channel_failure() -> None:
    async def work(url: str, client: Http1Client) -> UpstreamFailure:
        channel = _channel(url, proxy="socks5h://127.0.0.1:9", connect_timeout=2)
        with pytest.raises(UpstreamFailure) as caught:
            await HttpBackend(channel, client).relay(BODY, streaming=False)
        return caught.value

    failure = serve(replying(OK), work)
    assert "socks5h proxy 127.0.0.1:9" in failure.reason and not failure.auth
    assert orjson.dumps(failure.error.body())  # a clean 503 for the customer
