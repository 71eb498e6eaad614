"""Timing streamed replies as a client sees them: time to first token, gaps between token events."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from aicybench.targets import Target


@dataclass(frozen=True, slots=True)
class StreamTiming:
    ttft_ms: float  # request sent -> first token event
    total_ms: float  # request sent -> last token event
    token_events: int
    completion_tokens: int | None  # from the usage the stream reported, when it did

    @property
    def mean_gap_ms(self) -> float:
        """Mean time between consecutive token events."""
        if self.token_events < 2:
            return 0.0
        return (self.total_ms - self.ttft_ms) / (self.token_events - 1)

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens after the first, over the time after the first (the steady generation rate)."""
        tokens = self.completion_tokens or self.token_events
        span = (self.total_ms - self.ttft_ms) / 1000
        return (tokens - 1) / span if tokens > 1 and span > 0 else 0.0


def chat_body(model: str, content: str, max_tokens: int, stream: bool, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _token_event(api: str, event: Any) -> tuple[bool, int | None]:
    """(is a token event, completion tokens if the event reports usage)."""
    if api == "chat/completions":
        choices = event.get("choices") or []
        usage = event.get("usage") or {}
        has_text = bool(choices and (choices[0].get("delta") or {}).get("content"))
        return has_text, usage.get("completion_tokens")
    kind = event.get("type")
    if kind == "response.completed":
        return False, ((event.get("response") or {}).get("usage") or {}).get("output_tokens")
    return kind == "response.output_text.delta", None


async def time_stream(
    session: aiohttp.ClientSession, target: Target, api: str, body: dict[str, Any]
) -> StreamTiming:
    """Send one streamed request and time every token event in it."""
    headers = {"Authorization": target.authorization, "Content-Type": "application/json"}
    first = last = 0.0
    events = 0
    tokens: int | None = None
    start = time.perf_counter()
    async with session.post(target.url(api), data=orjson.dumps(body), headers=headers) as reply:
        if reply.status != 200:
            raise RuntimeError(f"{target.name} {api}: HTTP {reply.status}: {(await reply.text())[:300]}")
        async for line in reply.content:
            if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                continue
            is_token, usage = _token_event(api, orjson.loads(line[6:]))
            if is_token:
                last = time.perf_counter()
                first = first or last
                events += 1
            tokens = usage if usage is not None else tokens
    if not events:
        raise RuntimeError(f"{target.name} {api}: the stream carried no token events")
    return StreamTiming((first - start) * 1000, (last - start) * 1000, events, tokens)


def new_session() -> aiohttp.ClientSession:
    """One keep-alive connection per concurrent stream, no total timeout (engine streams are slow)."""
    connector = aiohttp.TCPConnector(limit=64, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600))
