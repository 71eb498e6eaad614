"""Keeping a connection alive while a request waits: to start (admission) or for its first token.

Streams get ``: keep-alive`` SSE comments every ``keepalive_seconds`` (proxies with idle timeouts see bytes),
and a Responses stream that has opened early also gets a real ``response.in_progress`` event every
``heartbeat_seconds`` until output begins (Codex's idle timer ignores comments). A non-streaming request that
waits past the grace period is committed to ``200`` and padded with blank lines, which JSON parsers skip.
:class:`aicy.http.streaming.EventStreamResponse` sends them; this module says what and when.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aicy.protocol.sse import KEEPALIVE

BLANK_LINE = b"\n"


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """``ping`` whenever the body has been silent for ``interval`` seconds; before it, ``heartbeat()`` (when
    it gives bytes) if no body chunk or heartbeat went out for ``heartbeat_every`` seconds."""

    interval: float
    ping: bytes = KEEPALIVE
    heartbeat: Callable[[], bytes | None] | None = None
    heartbeat_every: float = 60.0


def padding(interval: float) -> KeepAlive:
    """Blank lines before a JSON body."""
    return KeepAlive(interval, ping=BLANK_LINE)


async def once(work: Awaitable[bytes]) -> AsyncIterator[bytes]:
    """A body of one chunk, produced by ``work``."""
    yield await work
