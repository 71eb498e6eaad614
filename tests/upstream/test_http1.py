"""The upstream HTTP/1.1 client against real servers: the fault upstream (uvicorn) and a scripted raw TCP
server for what well-behaved servers never do (dropping a kept-alive connection, malformed or unframed
replies, huge bodies)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator

import orjson
import pytest
import trustme

from aicy.upstream.http1 import ClosedEarly, Http1Client, ReadTimeout, TransportError, request_head, split_url
from tests.fakes.fault_upstream import FaultUpstream
from tests.support import free_port

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("http1").start()
    yield server
    server.stop()


def _run(work: Callable[[Http1Client], object]) -> object:
    async def main() -> object:
        client = Http1Client()
        try:
            return await work(client)  # type: ignore[misc]
        finally:
            await client.close()

    return asyncio.run(main())


def test_streams_a_chunked_reply_and_reuses_the_connection(upstream: FaultUpstream) -> None:
    upstream.queue()
    upstream.requests.clear()

    async def work(client: Http1Client) -> list[bytes]:
        bodies = []
        for _ in range(3):
            reply = await client.request(
                "POST", upstream.base_url + "/chat/completions", orjson.dumps(CHAT), JSON_HEADERS
            )
            assert reply.status == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            bodies.append(b"".join([piece async for piece in reply.chunks()]))
            assert reply.at_eof
            reply.release()
        return bodies

    bodies = _run(work)
    assert all(body.rstrip().endswith(b"data: [DONE]") for body in bodies)  # type: ignore[union-attr]
    peers = [r["peer"] for r in upstream.requests]
    assert len(peers) == 3 and len(set(peers)) == 1


def test_an_error_status_is_a_reply_not_an_exception(upstream: FaultUpstream) -> None:
    upstream.queue("429")

    async def work(client: Http1Client) -> tuple[int, str | None, bytes]:
        reply = await client.request(
            "POST", upstream.base_url + "/chat/completions", orjson.dumps(CHAT), JSON_HEADERS
        )
        body = await reply.read()
        reply.release()
        return reply.status, reply.headers.get("content-type"), body

    status, kind, body = _run(work)  # type: ignore[misc]
    assert status == 429 and kind == "application/json"
    assert orjson.loads(body)["error"]["code"] == "injected"


def test_a_silent_upstream_times_out(upstream: FaultUpstream) -> None:
    upstream.state.stall = 3.0
    upstream.queue("stall")

    async def work(client: Http1Client) -> None:
        await client.request(
            "POST",
            upstream.base_url + "/chat/completions",
            orjson.dumps(CHAT),
            JSON_HEADERS,
            read_timeout=0.3,
        )

    with pytest.raises(ReadTimeout):
        _run(work)


def test_nobody_listening_is_a_transport_error() -> None:
    async def work(client: Http1Client) -> None:
        await client.request("GET", f"http://127.0.0.1:{free_port()}/v1/models")

    with pytest.raises(TransportError, match="cannot connect"):
        _run(work)


Script = Callable[[int, bytes], bytes | None]


async def _scripted(script: Script) -> tuple[asyncio.Server, list[int]]:
    """A server that answers the n-th request on each connection with ``script(n, request)``: bytes to
    send (then keep the connection), or None to close it without a word."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        number = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                answer = script(number, head + body)
                number += 1
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, connections


def _url(server: asyncio.Server) -> str:
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def _with_server(script: Script, work: Callable[[Http1Client, str], object]) -> tuple[object, list[int]]:
    async def main() -> tuple[object, list[int]]:
        server, connections = await _scripted(script)
        client = Http1Client()
        try:
            return await work(client, _url(server)), connections  # type: ignore[misc]
        finally:
            await client.close()
            server.close()

    return asyncio.run(main())


async def _read_all(client: Http1Client, url: str, times: int = 1) -> list[bytes]:
    out = []
    for _ in range(times):
        reply = await client.request("POST", url, b"{}", JSON_HEADERS)
        out.append(await reply.read())
        reply.release()
    return out


def test_a_kept_connection_the_upstream_drops_unanswered_is_retried_on_a_new_one() -> None:
    """What an upstream does to a connection it considers idle just as aicy sends on it."""
    bodies, connections = _with_server(lambda n, _: OK if n == 0 else None, lambda c, u: _read_all(c, u, 3))
    assert bodies == [b"ok"] * 3
    assert len(connections) == 3  # each connection answered once, then dropped the next request


def _answer_once_then_close(answer: bytes) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)  # the test's body, b"{}"
        writer.write(answer)
        await writer.drain()
        writer.close()

    return handle


def _against(answer: bytes, work: Callable[[Http1Client, str], object]) -> object:
    async def main() -> object:
        server = await asyncio.start_server(_answer_once_then_close(answer), "127.0.0.1", 0)  # type: ignore[arg-type]
        client = Http1Client()
        try:
            return await work(client, _url(server))  # type: ignore[misc]
        finally:
            await client.close()
            server.close()

    return asyncio.run(main())


def test_a_reply_cut_short_is_an_error_not_a_short_body() -> None:
    async def work(client: Http1Client, url: str) -> None:
        reply = await client.request("POST", url, b"{}", JSON_HEADERS)
        assert reply.status == 200
        await reply.read()

    with pytest.raises(ClosedEarly):
        _against(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", work)


def test_a_body_framed_by_the_end_of_the_connection_is_read_whole_and_not_reused() -> None:
    unframed = b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n" + b'{"a": 1}'

    async def twice(client: Http1Client, url: str) -> list[bytes]:
        return await _read_all(client, url, 2)  # the second request needs a new connection

    async def main() -> list[bytes]:
        server = await asyncio.start_server(_answer_once_then_close(unframed), "127.0.0.1", 0)  # type: ignore[arg-type]
        client = Http1Client()
        try:
            return await twice(client, _url(server))
        finally:
            await client.close()
            server.close()

    assert asyncio.run(main()) == [b'{"a": 1}', b'{"a": 1}']


def test_a_malformed_reply_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="malformed"):
        _with_server(lambda n, _: b"HTTP/1.1 abc\r\n\r\n", lambda c, u: _read_all(c, u))


def test_a_large_body_arrives_whole_through_flow_control() -> None:
    size = 5 * (1 << 20)
    big = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + b"x" * size

    async def slow_reader(client: Http1Client, url: str) -> int:
        reply = await client.request("POST", url, b"{}", JSON_HEADERS)
        total = 0
        async for piece in reply.chunks():
            total += len(piece)
            await asyncio.sleep(0.001)  # a reader slower than loopback: the client must pause reading
        reply.release()
        return total

    total, _ = _with_server(lambda n, _: big, slow_reader)
    assert total == size


def test_request_head_rejects_line_breaks_and_names_the_host() -> None:
    origin, path = split_url("https://api.example.com/v1/chat/completions?x=1")
    head = request_head("POST", path, origin, {"authorization": "Bearer k"}, 2)
    assert head.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: api.example.com\r\n")
    assert b"content-length: 2\r\n" in head and head.endswith(b"\r\n\r\n")
    assert split_url("http://[::1]:8080/v1")[0].authority == "[::1]:8080"
    with pytest.raises(ValueError):
        request_head("POST", path, origin, {"x-extra": "a\r\nInjected: 1"}, 0)


def test_https_verifies_the_certificate_and_reuses_the_connection() -> None:
    """Upstreams are mostly HTTPS (api.openai.com): TLS with server-name checking, kept alive like HTTP."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)

    async def main() -> tuple[list[bytes], int, str]:
        connections: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            try:
                while True:
                    await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(2)
                    writer.write(OK)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
        url = f"https://localhost:{server.sockets[0].getsockname()[1]}/v1/x"
        client, stranger = Http1Client(trusting), Http1Client()
        try:
            bodies = await _read_all(client, url, 2)
            with pytest.raises(TransportError) as refused:
                await _read_all(stranger, url)
            return bodies, len(connections), str(refused.value)
        finally:
            await client.close()
            await stranger.close()
            server.close()

    bodies, connections, refusal = asyncio.run(main())
    assert bodies == [b"ok", b"ok"]
    assert connections == 1  # one kept for both requests (the refused handshake never reached the handler)
    assert "CERTIFICATE_VERIFY_FAILED" in refusal


def test_an_idle_connection_that_speaks_out_of_turn_is_not_reused() -> None:
    """Some servers send a 408 on a connection they are about to drop; a reply nobody asked for means the
    connection's state is unknown, so it is closed rather than handed to the next request."""

    async def main() -> tuple[list[bytes], int]:
        connections: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            try:
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)
                writer.write(OK)
                await asyncio.sleep(0.05)
                writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
                while True:
                    await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(2)
                    writer.write(OK)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        client = Http1Client()
        try:
            first = await _read_all(client, _url(server))
            await asyncio.sleep(0.2)
            second = await _read_all(client, _url(server))
            return first + second, len(connections)
        finally:
            await client.close()
            server.close()

    bodies, connections = asyncio.run(main())
    assert bodies == [b"ok", b"ok"]
    assert connections == 2
