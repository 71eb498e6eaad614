"""Embedded engine figures: one stream through aicy against raw llama-cpp-python, then 8 concurrent streams.

Raw generation runs in a worker process of aicy's interpreter that loads the model once; its runs alternate
with runs through aicy (never at the same time), so drift on a busy machine hits both alike. Both decode
greedily (temperature 0) from the same chat-templated prompt: the same tokens, the same count.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from aicybench.procs import Unavailable
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
    concurrent_budget_s: float = 120.0  # skip the concurrent rounds if one stream says they'd take longer
    single_budget_s: float = 60.0  # fewer single-stream repeats when they take longer than this
    run_limit_s: float = 30.0  # one generation slower than this means a busy machine: no engine figures


class RawEngine:
    """The raw llama-cpp-python worker: loaded once, one greedy generation per ``run()``."""

    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self.process = process
        self.log = log
        self.info: dict[str, Any] = self._read()["ready"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise Unavailable(f"raw llama-cpp-python worker exited ({self.process.poll()}):\n{tail}")
        reply: dict[str, Any] = orjson.loads(line)
        return reply

    def run(self) -> dict[str, Any]:
        return self._ask("run")

    def batched(self, streams: int) -> dict[str, Any]:
        """The ceiling: llama.cpp alone decoding ``streams`` sequences in one batch per step."""
        return self._ask(f"batched {streams}")

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()


@contextmanager
def raw_engine(aicy_python: Path, plan: EnginePlan, cwd: Path, logs: Path) -> Iterator[RawEngine]:
    argv = [str(aicy_python), str(_RAW_SCRIPT), "--prompt", plan.prompt, "--max-tokens", str(plan.max_tokens)]
    argv += ["--max-seconds", str(plan.run_limit_s)]
    log = logs / "engine-raw.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
        )
    try:
        yield RawEngine(process, log)
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _through_aicy(t: StreamTiming) -> dict[str, Any]:
    tokens = t.completion_tokens or t.token_events
    return {
        "ttft_ms": t.ttft_ms,
        "total_ms": t.total_ms,
        "completion_tokens": tokens,
        "decode_tokens_per_s": t.decode_tokens_per_s,
        "end_to_end_tokens_per_s": tokens / (t.total_ms / 1000),
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "completion_tokens": runs[0]["completion_tokens"],
        "ttft_ms": rounded(median([r["ttft_ms"] for r in runs])),
        "decode_tokens_per_s": rounded(median([r["decode_tokens_per_s"] for r in runs]), 1),
        "end_to_end_tokens_per_s": rounded(median([r["end_to_end_tokens_per_s"] for r in runs]), 1),
        "runs": runs,
    }


async def _measure(raw: RawEngine, target: Target, plan: EnginePlan) -> dict[str, Any]:
    body = chat_body(target.model, plan.prompt, plan.max_tokens, stream=True, temperature=0)
    api = "chat/completions"
    raw_runs: list[dict[str, Any]] = []
    aicy_runs: list[dict[str, Any]] = []
    async with new_session() as session:
        await time_stream(session, target, api, {**body, "max_tokens": 4})  # warm-up
        deadline = time.monotonic() + plan.single_budget_s
        for _ in range(plan.single_repeats):
            raw_runs.append(_bounded(raw.run(), plan))
            aicy_runs.append(_through_aicy(await _bounded_stream(session, target, body, plan)))
            if time.monotonic() > deadline:  # a busy machine: keep what we have
                break
        rate = median([r["end_to_end_tokens_per_s"] for r in aicy_runs])
        expected_s = plan.concurrent * plan.max_tokens / rate if rate > 0 else float("inf")
        if expected_s > plan.concurrent_budget_s:
            reason = f"one stream made {rate:.1f} tokens/s, so {plan.concurrent} streams would take about "
            reason += f"{expected_s:.0f} s (budget {plan.concurrent_budget_s:.0f} s): is the machine busy?"
            many: dict[str, Any] = {"skipped": reason}
        else:
            many = await _concurrent(session, target, body, plan)
            ceilings = [raw.batched(plan.concurrent) for _ in range(plan.concurrent_rounds)]
    through = {
        **_summary(aicy_runs),
        f"concurrent_{plan.concurrent}": many,
        "peak_rss_mib": _peak_rss(target),
    }
    direct = {**raw.info, **_summary(raw_runs)}
    if "skipped" not in many:
        direct[f"batched_{plan.concurrent}"] = {
            "aggregate_tokens_per_s": rounded(median([c["aggregate_tokens_per_s"] for c in ceilings]), 1),
            "rounds": ceilings,
        }
    return {"raw": direct, "aicy": through, "aicy_over_raw": _compare(direct, through)}


def _peak_rss(target: Target) -> float | None:
    """The aicy server's peak resident memory so far (its KV caches are allocated at start), from /proc."""
    if target.service is None:
        return None
    try:
        status = Path(f"/proc/{target.service.process.pid}/status").read_text()
    except OSError:
        return None
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return rounded(kib / 1024, 1) if kib is not None else None


def _busy(what: str, plan: EnginePlan) -> Unavailable:
    return Unavailable(
        f"{what} took over {plan.run_limit_s:.0f} s for {plan.max_tokens} tokens: the machine is too busy "
        "for engine figures (another process on the cores?)"
    )


def _bounded(run: dict[str, Any], plan: EnginePlan) -> dict[str, Any]:
    if run.get("truncated"):
        raise _busy("one raw generation", plan)
    return run


async def _bounded_stream(
    session: aiohttp.ClientSession, target: Target, body: dict[str, Any], plan: EnginePlan
) -> StreamTiming:
    try:
        return await asyncio.wait_for(
            time_stream(session, target, "chat/completions", body), timeout=plan.run_limit_s
        )
    except TimeoutError:
        raise _busy("one stream through aicy", plan) from None


async def _concurrent(
    session: aiohttp.ClientSession, target: Target, body: dict[str, Any], plan: EnginePlan
) -> dict[str, Any]:
    """``plan.concurrent`` streams started together; aggregate tokens/s over the wall time of the round."""
    rounds: list[dict[str, Any]] = []
    for _ in range(plan.concurrent_rounds):
        start = time.perf_counter()
        streams = [time_stream(session, target, "chat/completions", body) for _ in range(plan.concurrent)]
        try:
            timings = await asyncio.wait_for(asyncio.gather(*streams), timeout=plan.concurrent_budget_s)
        except TimeoutError:
            return {"skipped": f"a round took over {plan.concurrent_budget_s:.0f} s: is the machine busy?"}
        wall = time.perf_counter() - start
        tokens = sum(t.completion_tokens or t.token_events for t in timings)
        ttfts = sorted(t.ttft_ms for t in timings)
        rounds.append({"aggregate_tokens_per_s": tokens / wall, "ttft_ms": ttfts, "wall_s": wall})
    return {
        "aggregate_tokens_per_s": rounded(median([r["aggregate_tokens_per_s"] for r in rounds]), 1),
        "ttft_p50_ms": rounded(median([median(r["ttft_ms"]) for r in rounds])),
        "ttft_max_ms": rounded(median([max(r["ttft_ms"]) for r in rounds])),
        "rounds": rounds,
    }


def measure(raw: RawEngine, target: Target, plan: EnginePlan) -> dict[str, Any]:
    return asyncio.run(_measure(raw, target, plan))


def _compare(raw: dict[str, Any], aicy: dict[str, Any]) -> dict[str, Any]:
    keys = ("decode_tokens_per_s", "end_to_end_tokens_per_s", "ttft_ms")
    return {k: rounded(ratio(aicy[k], raw[k])) for k in keys}
