"""``python -m aicybench.clients``: what an upstream HTTP client costs per call, against the bench mock.

One process sends sequential non-streaming Chat requests to the mock with each client in turn (rounds
alternate, so drift hits all): aiohttp (what aicy used before), aicy's own ``aicy/upstream/http1.py``, and a
bare asyncio protocol that only writes the request and waits for the reply's last byte (the floor). Prints the
median round trip of each, and how aicy's client compares with aiohttp: the whole round trip, and what the
client itself adds (its time over the floor). This is why aicy calls upstreams with its own client
(bench/NOTES.md). aicy's client is measured as aicy uses it: announcing the encodings it decodes, with its
connection limits, timers and caps in place.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import uvloop

from aicybench.procs import free_port
from aicybench.targets import BENCH_MODEL

# aicy's client from the repository itself: the bench venv does not install aicy
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from aicy.upstream.http1 import Http1Client

BODY = orjson.dumps(
    {"model": BENCH_MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 32}
)
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-mock"}
Call = Callable[[], Awaitable[None]]


class _Floor(asyncio.Protocol):
    """Writes a request, resolves ``done`` when the reply's declared length has arrived."""

    def __init__(self) -> None:
        self.done: asyncio.Future[None] | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        fields = (line.partition(b":") for line in head.split(b"\r\n"))
        length = next(int(value) for name, _, value in fields if name.lower() == b"content-length")
        if len(body) >= length and self.done is not None:
            self.buffer = b""
            self.done.set_result(None)


async def _clients(url: str, port: int) -> tuple[dict[str, Call], Call]:
    """The three clients by name, and what closes them."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    own = Http1Client()
    loop = asyncio.get_running_loop()
    _, floor = await loop.create_connection(_Floor, "127.0.0.1", port)
    raw = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer sk-mock\r\ncontent-length: %d\r\n\r\n" % len(BODY)
    ) + BODY

    async def with_aiohttp() -> None:
        async with session.post(url, data=BODY, headers=HEADERS) as reply:
            await reply.read()

    async def with_http1() -> None:
        reply = await own.request("POST", url, BODY, HEADERS)
        await reply.read()
        reply.release()

    async def bare() -> None:
        floor.done = loop.create_future()
        floor.transport.write(raw)  # type: ignore[attr-defined]
        await floor.done

    async def close() -> None:
        await session.close()
        await own.close()
        floor.transport.close()  # type: ignore[attr-defined]

    return {"aiohttp": with_aiohttp, "aicy http1": with_http1, "bare protocol (floor)": bare}, close


async def _measure(port: int, calls: int, rounds: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    clients, close = await _clients(url, port)
    times: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for _ in range(rounds):
            for name, call in clients.items():
                for i in range(calls):
                    started = time.perf_counter()
                    await call()
                    if i >= calls // 10:  # the first tenth warms up
                        times[name].append(time.perf_counter() - started)
    finally:
        await close()
    return {name: statistics.median(values) * 1e6 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, help="a running mock (default: start one)")
    parser.add_argument("--calls", type=int, default=2000, help="calls per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    mock = None
    port = args.port
    if port is None:
        import subprocess

        port = free_port()
        argv = [sys.executable, "-m", "aicybench.mock_server", "--port", str(port)]
        mock = subprocess.Popen(argv)
        time.sleep(2)
    try:
        medians = uvloop.run(_measure(port, args.calls, args.rounds))
    finally:
        if mock is not None:
            mock.terminate()
            mock.wait()
    floor = medians["bare protocol (floor)"]
    for name, value in medians.items():
        print(f"{name:>24}: {value:7.1f} µs per call  ({value - floor:+7.1f} µs over the floor)")
    own, theirs = medians["aicy http1"], medians["aiohttp"]
    print(
        f"{'aicy http1 / aiohttp':>24}: {own / theirs:7.2f}× per call, "
        f"{(own - floor) / max(theirs - floor, 1e-9):.2f}× of the client's own cost (over the floor)"
    )


if __name__ == "__main__":
    main()
