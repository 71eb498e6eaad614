"""Embedded engine figures: one stream through aicy against raw llama-cpp-python, then 8 concurrent streams.

Raw generation runs first, in aicy's interpreter, while no aicy server is up, so the two never share the
two cores. Both decode greedily (temperature 0) from the same chat-templated prompt, so they produce the
same tokens and the same count.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from aicybench.stats import median, ratio, rounded
from aicybench.streaming import StreamTiming, chat_body, new_session, time_stream
from aicybench.targets import Target

_RAW_SCRIPT = Path(__file__).with_name("engine_raw.py")


@dataclass(frozen=True, slots=True)
class EnginePlan:
    prompt: str = "Write a detailed essay about the history of the printing press in Europe."
    max_tokens: int = 128
    single_repeats: int = 5
    concurrent: int = 8
    concurrent_rounds: int = 2
    concurrent_budget_s: float = (
        120.0  # skip the concurrent rounds when one stream says they would take longer
    )


def raw_figures(aicy_python: Path, plan: EnginePlan, cwd: Path) -> dict[str, Any]:
    argv = [
        str(aicy_python), str(_RAW_SCRIPT), "--prompt", plan.prompt,
        "--max-tokens", str(plan.max_tokens), "--repeats", str(plan.single_repeats),
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"raw llama-cpp-python run failed:\n{done.stderr[-2000:]}")
    raw: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    runs = raw.pop("runs")
    return {
        **raw,
        "completion_tokens": runs[0]["completion_tokens"],
        "ttft_ms": rounded(median([r["ttft_ms"] for r in runs])),
        "decode_tokens_per_s": rounded(median([r["decode_tokens_per_s"] for r in runs]), 1),
        "end_to_end_tokens_per_s": rounded(median([r["end_to_end_tokens_per_s"] for r in runs]), 1),
        "runs": runs,
    }


def _single(t: StreamTiming) -> dict[str, Any]:
    tokens = t.completion_tokens or t.token_events
    return {
        "ttft_ms": t.ttft_ms,
        "total_ms": t.total_ms,
        "completion_tokens": tokens,
        "decode_tokens_per_s": t.decode_tokens_per_s,
        "end_to_end_tokens_per_s": tokens / (t.total_ms / 1000),
    }


async def _aicy(target: Target, plan: EnginePlan) -> dict[str, Any]:
    body = chat_body(target.model, plan.prompt, plan.max_tokens, stream=True, temperature=0)
    api = "chat/completions"
    async with new_session() as session:
        await time_stream(session, target, api, {**body, "max_tokens": 4})  # warm-up
        singles = [_single(await time_stream(session, target, api, body)) for _ in range(plan.single_repeats)]
        rate = median([s["end_to_end_tokens_per_s"] for s in singles])
        expected_s = plan.concurrent * plan.max_tokens / rate if rate > 0 else float("inf")
        if expected_s > plan.concurrent_budget_s:
            reason = f"one stream made {rate:.1f} tokens/s, so {plan.concurrent} streams would take about "
            reason += f"{expected_s:.0f} s (budget {plan.concurrent_budget_s:.0f} s): is the machine busy?"
            many: dict[str, Any] = {"skipped": reason}
        else:
            many = await _concurrent(session, target, body, plan)
    return {
        "completion_tokens": singles[0]["completion_tokens"],
        "ttft_ms": rounded(median([s["ttft_ms"] for s in singles])),
        "decode_tokens_per_s": rounded(median([s["decode_tokens_per_s"] for s in singles]), 1),
        "end_to_end_tokens_per_s": rounded(median([s["end_to_end_tokens_per_s"] for s in singles]), 1),
        "singles": singles,
        f"concurrent_{plan.concurrent}": many,
    }


async def _concurrent(
    session: aiohttp.ClientSession, target: Target, body: dict[str, Any], plan: EnginePlan
) -> dict[str, Any]:
    """``plan.concurrent`` streams started together; aggregate tokens/s over the wall time of the round."""
    rounds: list[dict[str, Any]] = []
    for _ in range(plan.concurrent_rounds):
        start = time.perf_counter()
        streams = await asyncio.gather(
            *(time_stream(session, target, "chat/completions", body) for _ in range(plan.concurrent))
        )
        wall = time.perf_counter() - start
        tokens = sum(s.completion_tokens or s.token_events for s in streams)
        ttfts = sorted(s.ttft_ms for s in streams)
        rounds.append({"aggregate_tokens_per_s": tokens / wall, "ttft_ms": ttfts, "wall_s": wall})
    return {
        "aggregate_tokens_per_s": rounded(median([r["aggregate_tokens_per_s"] for r in rounds]), 1),
        "ttft_p50_ms": rounded(median([median(r["ttft_ms"]) for r in rounds])),
        "ttft_max_ms": rounded(median([max(r["ttft_ms"]) for r in rounds])),
        "rounds": rounds,
    }


def aicy_figures(target: Target, plan: EnginePlan) -> dict[str, Any]:
    return asyncio.run(_aicy(target, plan))


def compare(raw: dict[str, Any], aicy: dict[str, Any]) -> dict[str, Any]:
    return {
        "decode_tokens_per_s": rounded(ratio(aicy["decode_tokens_per_s"], raw["decode_tokens_per_s"])),
        "end_to_end_tokens_per_s": rounded(
            ratio(aicy["end_to_end_tokens_per_s"], raw["end_to_end_tokens_per_s"])
        ),
    }
