"""Keeping a connection alive while a request waits: to start (admission) or for its first token.

Streams get ``: keep-alive`` SSE comments every ``keepalive_seconds`` (proxies with idle timeouts see bytes),
and a Responses stream that has opened early also gets a real ``response.in_progress`` event every
``heartbeat_seconds`` until output begins (Codex's idle timer ignores comments). A non-streaming request that
waits past the grace period is committed to ``200`` and padded with blank lines, which JSON parsers skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aicy.protocol.sse import KEEPALIVE

BLANK_LINE = b"\n"


async def with_keepalive(
    body: AsyncIterator[bytes],
    interval: float,
    ping: bytes = KEEPALIVE,
    heartbeat: Callable[[], bytes | None] | None = None,
    heartbeat_every: float = 60.0,
) -> AsyncIterator[bytes]:
    """``body``, with ``ping`` whenever it is silent for ``interval`` seconds."""
    iterator = aiter(body)
    pending: asyncio.Future[bytes] | None = None
    last_event = time.monotonic()
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                if heartbeat is not None and time.monotonic() - last_event >= heartbeat_every:
                    beat = heartbeat()
                    if beat is not None:
                        last_event = time.monotonic()
                        yield beat
                yield ping
                continue
            finished, pending = pending, None
            try:
                chunk = finished.result()
            except StopAsyncIteration:
                return
            last_event = time.monotonic()
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def padded(work: Awaitable[bytes], interval: float) -> AsyncIterator[bytes]:
    """Blank lines every ``interval`` until ``work`` gives the body."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                yield task.result()
                return
            yield BLANK_LINE
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
