"""``python -m aicybench.clients``: what an upstream HTTP client costs per call, against the bench mock.

One process sends sequential non-streaming Chat requests to the mock (a separate process) with each client in
turn (rounds alternate, so drift hits all): aiohttp (what aicy used before), aicy's own
``aicy/upstream/http1.py``, and a bare asyncio protocol that only writes the request and waits for the reply's
last byte (the floor). Every client sends the same request and reads the same whole reply over one kept-alive
connection. aicy's client is called as ``aicy/upstream/openai_http.py`` calls it: announcing the encodings it
decodes, with a channel's default read, write and total timeouts and the 64 MiB body cap, its connection
limits and idle timer in place.

Two figures per client, both medians:

- the round trip (wall time per call): the mock server's work, the kernel's loopback and the wake-up of two
  processes included. On a 2-core VM the floor alone is 40–50 % of aiohttp's round trip, and it moves with
  the neighbours' load (55–250 µs seen), so no client could reach much below that ratio;
- the client process's CPU time per call (``time.process_time`` over batches of calls; the mock's CPU is in
  its own process and not counted). This is the client's cost per call: what it makes the machine do, user
  and kernel time, the send and receive syscalls included. It holds still under load where wall time does
  not, because waiting for the other process costs no CPU.

"Over the floor" subtracts the bare protocol's figure: the client's own cost above writing bytes and waiting
for the answer, which every client pays. This is why aicy calls upstreams with its own client
(bench/NOTES.md, "issue 16").
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
from aicy.domain.channels import Channel
from aicy.upstream.channel_settings import channel_route
from aicy.upstream.http1 import Http1Client, Limits

BODY = orjson.dumps(
    {"model": BENCH_MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 32}
)
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-mock"}
FLOOR = "bare protocol (floor)"
BATCH = 100  # calls per CPU-time sample
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

    channel = Channel(name="bench", base_url=url)
    route, limits = channel_route(channel), Limits()

    async def with_http1() -> None:  # as aicy.upstream.openai_http.HttpBackend.open and UpstreamReply.json do
        reply = await own.request(
            "POST",
            url,
            BODY,
            HEADERS,
            connect_timeout=channel.connect_timeout,
            read_timeout=channel.timeout,
            write_timeout=channel.write_timeout,
            total_timeout=channel.total_timeout,
            route=route,
        )
        await reply.read(limits.max_body_bytes)
        reply.release()

    async def bare() -> None:
        floor.done = loop.create_future()
        floor.transport.write(raw)  # type: ignore[attr-defined]
        await floor.done

    async def close() -> None:
        await session.close()
        await own.close()
        floor.transport.close()  # type: ignore[attr-defined]

    return {"aiohttp": with_aiohttp, "aicy http1": with_http1, FLOOR: bare}, close


async def _measure(port: int, calls: int, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median round trip and median CPU time per call (µs) of each client."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    clients, close = await _clients(url, port)
    times: dict[str, list[float]] = {name: [] for name in clients}
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for _ in range(rounds):
            for name, call in clients.items():
                for _ in range(calls // 10):  # the first tenth warms up
                    await call()
                for _ in range(max((calls - calls // 10) // BATCH, 1)):
                    cpu_started = time.process_time()
                    for _ in range(BATCH):
                        started = time.perf_counter()
                        await call()
                        times[name].append(time.perf_counter() - started)
                    cpu[name].append((time.process_time() - cpu_started) / BATCH)
    finally:
        await close()
    return (
        {name: statistics.median(values) * 1e6 for name, values in times.items()},
        {name: statistics.median(values) * 1e6 for name, values in cpu.items()},
    )


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
        wall, cpu = uvloop.run(_measure(port, args.calls, args.rounds))
    finally:
        if mock is not None:
            mock.terminate()
            mock.wait()
    print(f"{'':>24}  {'round trip':>26}  {'client CPU time':>26}")
    for name in wall:
        print(
            f"{name:>24}: {wall[name]:7.1f} µs ({wall[name] - wall[FLOOR]:+6.1f} over floor)"
            f"  {cpu[name]:7.1f} µs ({cpu[name] - cpu[FLOOR]:+6.1f} over floor)"
        )
    print(f"{'aicy http1 / aiohttp':>24}: {_ratios(wall)}  {_ratios(cpu)}")
    print("The client's cost per call is its CPU time (the module's docstring says why).")


def _ratios(medians: dict[str, float]) -> str:
    own, theirs, floor = medians["aicy http1"], medians["aiohttp"], medians[FLOOR]
    return f"{own / theirs:5.2f}× ({(own - floor) / max(theirs - floor, 1e-9):4.2f}× over floor)"


if __name__ == "__main__":
    main()
