"""What a gateway adds: latency at concurrency 1, streaming, capacity; always next to a direct measurement.

Latency and streaming are measured in rounds; each round measures direct and then the gateway against the
same mock, so drift on a noisy machine hits both. Figures are medians over rounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aicybench import capacity, wrk
from aicybench.stats import median, percentile, rounded
from aicybench.streaming import StreamTiming, chat_body, new_session, time_stream
from aicybench.targets import Target, configure_mock

SYSTEM_PROMPT = (
    "You are a concise assistant for a software company. Answer in plain English, cite the relevant "
    "configuration keys when they matter, and never invent command-line flags."
)
USER_PROMPT = "Explain in two sentences what an API gateway does and why it adds latency."


@dataclass(frozen=True, slots=True)
class OverheadPlan:
    rounds: int = 3
    latency_seconds: int = 3
    streams_per_round: int = 40
    reply_tokens: int = 32
    stream_tokens: int = 64
    chunk_gap_ms: float = 0.0
    capacity: capacity.CapacityPlan = field(default_factory=capacity.CapacityPlan)


@dataclass(frozen=True, slots=True)
class Bodies:
    chat: Path
    responses: Path

    @classmethod
    def write(cls, folder: Path, model: str) -> Bodies:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_PROMPT}]
        chat = {"model": model, "messages": messages, "max_tokens": 256}
        responses = {"model": model, "instructions": SYSTEM_PROMPT, "input": USER_PROMPT, "store": False}
        return cls(wrk.body_file(folder, "chat", chat), wrk.body_file(folder, "responses", responses))


def _latency_summary(results: list[wrk.WrkResult]) -> dict[str, Any]:
    return {
        "p50_ms": rounded(median([r.p50_ms for r in results])),
        "p99_ms": rounded(median([r.p99_ms for r in results])),
        "requests": sum(r.requests for r in results),
        "errors": sum(r.errors for r in results),
        "rounds": [r.as_dict() for r in results],
    }


def _added(gw: list[float], direct: list[float]) -> float | None:
    return rounded(median([g - d for g, d in zip(gw, direct, strict=True)])) if gw else None


def latency_c1(
    gateway: Target | None, direct: Target, api: str, body: Path, plan: OverheadPlan
) -> dict[str, Any]:
    """Closed loop, one connection, non-streaming; rounds alternate direct and gateway."""
    for t in (direct, gateway):
        if t is not None:
            wrk.run(t, api, body, connections=1, seconds=1)  # warm-up: connections, caches, lazy imports
    direct_runs: list[wrk.WrkResult] = []
    gateway_runs: list[wrk.WrkResult] = []
    for _ in range(plan.rounds):
        direct_runs.append(wrk.run(direct, api, body, connections=1, seconds=plan.latency_seconds))
        if gateway is not None:
            gateway_runs.append(wrk.run(gateway, api, body, connections=1, seconds=plan.latency_seconds))
    out = {"direct": _latency_summary(direct_runs)}
    if gateway is not None:
        out["gateway"] = _latency_summary(gateway_runs)
        out["added"] = {
            "p50_ms": _added([r.p50_ms for r in gateway_runs], [r.p50_ms for r in direct_runs]),
            "p99_ms": _added([r.p99_ms for r in gateway_runs], [r.p99_ms for r in direct_runs]),
        }
    return out


def _stream_summary(rounds: list[list[StreamTiming]]) -> dict[str, Any]:
    pooled = [t for r in rounds for t in r]
    return {
        "ttft_p50_ms": rounded(median([median([t.ttft_ms for t in r]) for r in rounds])),
        "ttft_p99_ms": rounded(percentile([t.ttft_ms for t in pooled], 99)),
        "chunk_gap_ms": rounded(median([t.mean_gap_ms for t in pooled]), 4),
        "total_p50_ms": rounded(median([t.total_ms for t in pooled])),
        "token_events": pooled[0].token_events,
        "streams": len(pooled),
    }


async def _stream_rounds(
    targets: list[Target], api: str, plan: OverheadPlan
) -> list[list[list[StreamTiming]]]:
    """For each target, for each round, the timings of its streams (targets interleaved per round)."""
    body = chat_body(targets[0].model, USER_PROMPT, 256, stream=True)
    body.pop("model")
    out: list[list[list[StreamTiming]]] = [[] for _ in targets]
    async with new_session() as session:
        for t in targets:
            await time_stream(session, t, api, {**body, "model": t.model})  # warm-up
        for _ in range(plan.rounds):
            for i, t in enumerate(targets):
                timings = [
                    await time_stream(session, t, api, {**body, "model": t.model})
                    for _ in range(plan.streams_per_round)
                ]
                out[i].append(timings)
    return out


def streaming_c1(gateway: Target | None, direct: Target, plan: OverheadPlan) -> dict[str, Any]:
    """Streamed Chat Completions at concurrency 1: time to first token and the gap between token events."""
    targets = [direct] if gateway is None else [direct, gateway]
    rounds = asyncio.run(_stream_rounds(targets, "chat/completions", plan))
    out = {"direct": _stream_summary(rounds[0])}
    if gateway is not None:
        d, g = rounds
        out["gateway"] = _stream_summary(g)
        out["added"] = {
            "ttft_p50_ms": _added(
                [median([t.ttft_ms for t in r]) for r in g], [median([t.ttft_ms for t in r]) for r in d]
            ),
            "ttft_p99_ms": rounded(out["gateway"]["ttft_p99_ms"] - out["direct"]["ttft_p99_ms"]),
            "chunk_gap_ms": _added(
                [median([t.mean_gap_ms for t in r]) for r in g],
                [median([t.mean_gap_ms for t in r]) for r in d],
            ),
        }
    return out


def measure(
    gateway: Target | None,
    direct: Target,
    mock_base: str,
    bodies: Bodies,
    plan: OverheadPlan,
    log: Any = print,
) -> dict[str, Any]:
    """Every overhead figure for one gateway (or for direct alone when ``gateway`` is None).

    A phase that fails is recorded as ``{"failed": why}`` and the next one runs, unless a server died.
    """
    name = gateway.name if gateway else direct.name
    targets = " or ".join(f"{v:g} ms" for v in plan.capacity.targets_ms.values())

    def chat() -> dict[str, Any]:
        log(f"[{name}] latency at concurrency 1 (Chat Completions, then Responses)")
        configure_mock(mock_base, delay_ms=0, tokens=plan.reply_tokens)
        return latency_c1(gateway, direct, "chat/completions", bodies.chat, plan)

    def responses() -> dict[str, Any]:
        return latency_c1(gateway, direct, "responses", bodies.responses, plan)

    def stream() -> dict[str, Any]:
        log(f"[{name}] streamed replies at concurrency 1")
        configure_mock(mock_base, delay_ms=0, chunk_gap_ms=plan.chunk_gap_ms, tokens=plan.stream_tokens)
        return streaming_c1(gateway, direct, plan)

    def load() -> dict[str, Any]:
        log(f"[{name}] capacity at a {plan.capacity.delay_ms:g} ms mock delay, p99 within {targets}")
        configure_mock(mock_base, delay_ms=plan.capacity.delay_ms, tokens=plan.reply_tokens)
        return capacity.find_capacity(gateway or direct, bodies.chat, plan.capacity, log).as_dict()

    phases = {"latency_c1": chat, "responses_latency_c1": responses, "stream_c1": stream, "capacity": load}
    return {
        key: _phase(f"[{name}] {key}", run, [t for t in (direct, gateway) if t], log)
        for key, run in phases.items()
    }


def _phase(label: str, run: Callable[[], dict[str, Any]], servers: list[Target], log: Any) -> dict[str, Any]:
    try:
        return run()
    except Exception as exc:
        for t in servers:
            t.check_alive()  # raises Unavailable: a dead server fails the whole path, with its log
        log(f"{label} FAILED: {exc}")
        return {"failed": str(exc)}
