"""A long prompt against the others: does reading it freeze the embedded engine? (issue 13)

Each round, through aicy's engine (``smollm2-135m-instruct``, streamed Chat Completions, temperature 0):

1. alone: the long prompt (~6,000 tokens, one output token), its time to first token = its prefill time;
   a running stream (a counting prompt) for ``stream_tokens`` tokens, its decode tokens/s; a short request,
   its time to first token;
2. together: the running stream starts; once it streams, the long prompt is sent; ``short_delay_s`` later
   the short request. The stream is dropped when the long prompt's first token arrives.

Figures: the long prompt's prefill time together / alone, the stream's tokens/s during the long prefill
(its token events between the long request and the long prompt's first token, over that time) / alone,
and the short request's time to first token during the prefill. Every long prompt starts with a fresh
number, so no prefix of it is in the KV cache from an earlier round.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from aicybench.procs import Unavailable
from aicybench.stats import median, ratio, rounded
from aicybench.streaming import chat_body, new_session
from aicybench.targets import Target

_API = "chat/completions"
_COUNTING = "Count from 1 to 5000, in digits, separated by commas: 1, 2, 3, 4, 5,"


@dataclass(frozen=True, slots=True)
class PrefillPlan:
    long_items: int = 1000  # "item N is blue;" about six tokens each: ~6,000 prompt tokens
    stream_tokens: int = 128  # the stream alone; together it runs until the long prompt is read
    short_prompt: str = "Say hello."
    short_tokens: int = 8
    short_delay_s: float = 3.0
    rounds: int = 2
    run_limit_s: float = 300.0  # a long prefill slower than this means a busy machine: no figures


@dataclass(slots=True)
class Timed:
    """Token event times (perf_counter) of one stream, filled in as they arrive."""

    sent: float = 0.0
    tokens: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None

    @property
    def ttft_s(self) -> float:
        return self.tokens[0] - self.sent

    def rate(self, start: float, end: float) -> float:
        """Tokens/s of the events in [start, end], over that span."""
        inside = [t for t in self.tokens if start <= t <= end]
        return len(inside) / (end - start) if end > start else 0.0


async def _stream(session: aiohttp.ClientSession, target: Target, body: dict[str, Any], out: Timed) -> None:
    headers = {"Authorization": target.authorization, "Content-Type": "application/json"}
    out.sent = time.perf_counter()
    async with session.post(target.url(_API), data=orjson.dumps(body), headers=headers) as reply:
        if reply.status != 200:
            raise RuntimeError(f"{target.name}: HTTP {reply.status}: {(await reply.text())[:300]}")
        async for line in reply.content:
            if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                continue
            event = orjson.loads(line[6:])
            choices = event.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                out.tokens.append(time.perf_counter())
            if event.get("usage"):
                out.prompt_tokens = event["usage"].get("prompt_tokens")


def _long_body(target: Target, plan: PrefillPlan) -> dict[str, Any]:
    nonce = random.randrange(10**9)  # only to defeat the prefix cache
    items = " ".join(f"item {i} is blue;" for i in range(plan.long_items))
    prompt = f"Note {nonce}. Summarise this list in one word. {items}"
    return chat_body(target.model, prompt, 1, stream=True, temperature=0)


class _Round:
    def __init__(self, session: aiohttp.ClientSession, target: Target, plan: PrefillPlan) -> None:
        self.session, self.target, self.plan = session, target, plan

    async def run(self, body: dict[str, Any]) -> Timed:
        out = Timed()
        await asyncio.wait_for(_stream(self.session, self.target, body, out), timeout=self.plan.run_limit_s)
        if not out.tokens:
            raise RuntimeError(f"{self.target.name}: a stream carried no token events")
        return out

    def stream_body(self, tokens: int) -> dict[str, Any]:
        return chat_body(self.target.model, _COUNTING, tokens, stream=True, temperature=0)

    def short_body(self) -> dict[str, Any]:
        return chat_body(self.target.model, self.plan.short_prompt, self.plan.short_tokens, stream=True)

    async def alone(self) -> dict[str, Any]:
        long = await self.run(_long_body(self.target, self.plan))
        stream = await self.run(self.stream_body(self.plan.stream_tokens))
        short = await self.run(self.short_body())
        return {
            "long_prompt_tokens": long.prompt_tokens,
            "prefill_s": long.ttft_s,
            "stream_tokens_per_s": stream.rate(stream.tokens[0], stream.tokens[-1]),
            "short_ttft_s": short.ttft_s,
        }

    async def together(self) -> dict[str, Any]:
        stream = Timed()
        running = asyncio.create_task(_stream(self.session, self.target, self.stream_body(4000), stream))
        try:
            while len(stream.tokens) < 3:  # it is streaming
                if running.done():
                    running.result()
                    raise RuntimeError("the running stream ended before the long prompt was sent")
                await asyncio.sleep(0.01)
            long_task = asyncio.create_task(self.run(_long_body(self.target, self.plan)))
            await asyncio.sleep(self.plan.short_delay_s)
            short = await self.run(self.short_body())
            long = await long_task
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running
        end = long.tokens[0]
        return {
            "long_prompt_tokens": long.prompt_tokens,
            "prefill_s": long.ttft_s,
            "stream_tokens_per_s": stream.rate(long.sent, end),
            "stream_tokens_during": sum(1 for t in stream.tokens if long.sent <= t <= end),
            "short_ttft_s": short.ttft_s,
            "short_done_before_long_read": short.tokens[-1] < end,
        }


def _figures(alone: list[dict[str, Any]], together: list[dict[str, Any]]) -> dict[str, Any]:
    def mid(runs: list[dict[str, Any]], key: str) -> float:
        return median([r[key] for r in runs])

    out: dict[str, Any] = {
        "long_prompt_tokens": together[0]["long_prompt_tokens"],
        "prefill_alone_s": rounded(mid(alone, "prefill_s"), 2),
        "prefill_with_stream_s": rounded(mid(together, "prefill_s"), 2),
        "stream_alone_tokens_per_s": rounded(mid(alone, "stream_tokens_per_s"), 1),
        "stream_during_prefill_tokens_per_s": rounded(mid(together, "stream_tokens_per_s"), 1),
        "short_ttft_alone_s": rounded(mid(alone, "short_ttft_s"), 3),
        "short_ttft_during_prefill_s": rounded(mid(together, "short_ttft_s"), 3),
    }
    out["prefill_growth"] = rounded(ratio(out["prefill_with_stream_s"], out["prefill_alone_s"]))
    out["stream_kept"] = rounded(
        ratio(out["stream_during_prefill_tokens_per_s"], out["stream_alone_tokens_per_s"])
    )
    return out


async def _measure(target: Target, plan: PrefillPlan) -> dict[str, Any]:
    alone: list[dict[str, Any]] = []
    together: list[dict[str, Any]] = []
    async with new_session() as session:
        one = _Round(session, target, plan)
        await one.run(one.short_body())  # warm-up
        for _ in range(plan.rounds):
            try:
                alone.append(await one.alone())
                together.append(await one.together())
            except TimeoutError:
                raise Unavailable(
                    f"a request took over {plan.run_limit_s:.0f} s: "
                    "the machine is too busy for prefill figures"
                ) from None
    return {**_figures(alone, together), "rounds": {"alone": alone, "together": together}}


def measure(target: Target, plan: PrefillPlan) -> dict[str, Any]:
    return asyncio.run(_measure(target, plan))
