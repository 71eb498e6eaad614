"""The highest constant request rate a path sustains within a p99 latency target, and its latency curve.

1. Calibrate: closed-loop runs with 16, 64, 256, 1024 connections, stopping once latency shows queueing,
   give the path's saturation throughput without burying a slow gateway under a huge backlog.
2. Ladder: offer fixed fractions of it, lowest first (then 1.2 times more while rates still pass), until a
   rate fails the looser target.
3. Refine: bisect between the highest passing and the lowest failing rate, for each target, never below the
   first rung. A rate that passes above one that failed does not count (noise); capacity is the highest
   rate below every failure (0 when the first rung fails).

Two readings of "p99 under 50 ms over a 20 ms mock delay" are reported from the same points: p99 <= 50 ms
in total (``total``), and p99 <= 20 + 50 ms (``added``). A rate passes a target when its p99 is within it,
at least 95 % of the offered requests completed, and fewer than 0.1 % failed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aicybench import wrk
from aicybench.targets import Target

Log = Callable[[str], None]
_CALIBRATION_CONNECTIONS = (16, 64, 256, 1024)


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    slo_p99_ms: float = 50.0
    delay_ms: float = 20.0  # the mock's delay during the sweep
    seconds: int = 5
    min_requests: int = 200  # low rates run longer (up to max_seconds) so that p99 is not just the maximum
    max_seconds: int = 15
    calibration_seconds: int = 2
    fractions: tuple[float, ...] = (0.1, 0.3, 0.5, 0.65, 0.8, 0.9, 1.0, 1.1)
    refine_steps: int = 2
    extra_steps: int = 3  # past the last fraction, while rates still pass: 1.2 times the previous rate
    settle_s: float = 1.0

    @property
    def targets_ms(self) -> dict[str, float]:
        return {"total": self.slo_p99_ms, "added": self.delay_ms + self.slo_p99_ms}


@dataclass(frozen=True, slots=True)
class LoadPoint:
    offered: float
    result: wrk.WrkResult
    passes: dict[str, bool]  # target name -> sustained within it

    @property
    def sustained(self) -> bool:
        return self.passes["total"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "offered": round(self.offered, 1),
            "sustained": self.sustained,
            **{f"within_{k}": v for k, v in self.passes.items()},
            **self.result.as_dict(),
        }


@dataclass(slots=True)
class Capacity:
    saturation_rate: float
    targets_ms: dict[str, float]
    points: list[LoadPoint] = field(default_factory=list)

    def max_rate(self, target: str) -> float:
        """The highest passing rate below the lowest failing one (a lucky pass above a failure is noise)."""
        ceiling = self.lowest_failure(target)
        passing = (p.offered for p in self.points if p.passes[target])
        return max((r for r in passing if ceiling is None or r < ceiling), default=0.0)

    def lowest_failure(self, target: str) -> float | None:
        return min((p.offered for p in self.points if not p.passes[target]), default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_sustained_rps": round(self.max_rate("total"), 1),
            "max_sustained_rps_added_target": round(self.max_rate("added"), 1),
            "p99_targets_ms": self.targets_ms,
            "closed_loop_saturation_rps": round(self.saturation_rate, 1),
            "points": [p.as_dict() for p in sorted(self.points, key=lambda p: p.offered)],
        }


def _passes(offered: float, result: wrk.WrkResult, plan: CapacityPlan) -> dict[str, bool]:
    delivered = result.rate >= 0.95 * offered and result.errors <= 0.001 * max(1, result.requests)
    return {name: delivered and result.p99_ms <= limit for name, limit in plan.targets_ms.items()}


def _measure(target: Target, body: Path, offered: float, plan: CapacityPlan, log: Log) -> LoadPoint:
    connections = wrk.connections_for(offered, plan.delay_ms + plan.slo_p99_ms)
    seconds = min(plan.max_seconds, max(plan.seconds, math.ceil(plan.min_requests / max(offered, 1e-3))))
    result = wrk.run(target, "chat/completions", body, connections=connections, seconds=seconds, rate=offered)
    time.sleep(plan.settle_s)
    point = LoadPoint(offered, result, _passes(offered, result, plan))
    log(f"  {target.name}: {_describe(point)}")
    return point


def _calibrate(target: Target, body: Path, plan: CapacityPlan, log: Log) -> float:
    best = 0.0
    for connections in _CALIBRATION_CONNECTIONS:
        result = wrk.run(
            target, "chat/completions", body, connections=connections, seconds=plan.calibration_seconds
        )
        best = max(best, result.rate)
        seen = f"{result.rate:.0f} req/s, p50 {result.p50_ms:.1f} ms"
        log(f"  {target.name}: closed loop, {connections} connections: {seen}")
        if result.p50_ms > 2 * plan.delay_ms + 5:  # queueing: more connections only add backlog
            break
    time.sleep(2 * plan.settle_s)  # let a gateway drain what the closed loop left in flight
    return best


def find_capacity(target: Target, body: Path, plan: CapacityPlan, log: Log = print) -> Capacity:
    capacity = Capacity(_calibrate(target, body, plan, log), plan.targets_ms)
    for offered in _ladder(capacity.saturation_rate, plan):
        point = _measure(target, body, offered, plan, log)
        capacity.points.append(point)
        if not point.passes["added"]:
            break
    floor = plan.fractions[0] * capacity.saturation_rate
    for name in plan.targets_ms:
        for _ in range(plan.refine_steps):
            low, high = capacity.max_rate(name), capacity.lowest_failure(name)
            # Never below the ladder's first rung: a path that fails there has no capacity worth the name,
            # and at a request or two per second wrk's idle connections get closed by the server (errors).
            if high is None or high - low < 0.03 * high or high <= floor:
                break
            capacity.points.append(_measure(target, body, (low + high) / 2, plan, log))
    return capacity


def _ladder(saturation: float, plan: CapacityPlan) -> Iterator[float]:
    yield from (f * saturation for f in plan.fractions)
    rate = plan.fractions[-1] * saturation
    for _ in range(plan.extra_steps):
        rate *= 1.2
        yield rate


def _describe(point: LoadPoint) -> str:
    r = point.result
    verdict = ", ".join(f"{k} {'ok' if ok else 'FAIL'}" for k, ok in point.passes.items())
    return (
        f"offered {point.offered:7.0f} req/s -> {r.rate:7.0f} req/s, p50 {r.p50_ms:6.1f} ms, "
        f"p99 {r.p99_ms:6.1f} ms, errors {r.errors} ({verdict})"
    )
