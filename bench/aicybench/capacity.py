"""The highest constant request rate a path sustains within a p99 latency target, and its latency curve.

1. Calibrate: a closed-loop run with many connections gives the path's saturation throughput.
2. Ladder: offer fixed fractions of it, lowest first, until a rate is not sustained.
3. Refine: bisect between the highest sustained and the lowest failed rate.

A rate is sustained when p99 <= the target, at least 95 % of the offered requests completed, and fewer than
0.1 % failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aicybench import wrk
from aicybench.targets import Target

_CALIBRATION_CONNECTIONS = 256


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    slo_p99_ms: float = 50.0
    seconds: int = 5
    fractions: tuple[float, ...] = (0.1, 0.3, 0.5, 0.65, 0.8, 0.9, 1.0, 1.1)
    refine_steps: int = 2
    settle_s: float = 1.0


@dataclass(frozen=True, slots=True)
class LoadPoint:
    offered: float
    result: wrk.WrkResult
    sustained: bool

    def as_dict(self) -> dict[str, Any]:
        return {"offered": round(self.offered, 1), "sustained": self.sustained, **self.result.as_dict()}


@dataclass(slots=True)
class Capacity:
    saturation_rate: float
    points: list[LoadPoint] = field(default_factory=list)

    @property
    def max_sustained(self) -> float:
        return max((p.offered for p in self.points if p.sustained), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_sustained_rps": round(self.max_sustained, 1),
            "closed_loop_saturation_rps": round(self.saturation_rate, 1),
            "points": [p.as_dict() for p in sorted(self.points, key=lambda p: p.offered)],
        }


def _sustained(offered: float, result: wrk.WrkResult, plan: CapacityPlan) -> bool:
    return (
        result.p99_ms <= plan.slo_p99_ms
        and result.rate >= 0.95 * offered
        and result.errors <= 0.001 * max(1, result.requests)
    )


def _measure(target: Target, body: Path, offered: float, plan: CapacityPlan) -> LoadPoint:
    connections = wrk.connections_for(offered, plan.slo_p99_ms)
    result = wrk.run(target, "chat/completions", body, connections=connections, seconds=plan.seconds, rate=offered)
    time.sleep(plan.settle_s)
    return LoadPoint(offered, result, _sustained(offered, result, plan))


def find_capacity(target: Target, body: Path, plan: CapacityPlan, log: Any = print) -> Capacity:
    calibration = wrk.run(
        target, "chat/completions", body, connections=_CALIBRATION_CONNECTIONS, seconds=plan.seconds
    )
    time.sleep(3 * plan.settle_s)  # let a gateway drain what the closed loop left in flight
    capacity = Capacity(calibration.rate)
    log(f"  {target.name}: closed-loop saturation {calibration.rate:.0f} req/s")
    for fraction in plan.fractions:
        point = _measure(target, body, fraction * calibration.rate, plan)
        capacity.points.append(point)
        log(f"  {target.name}: {_describe(point)}")
        if not point.sustained:
            break
    for _ in range(plan.refine_steps):
        failed = [p.offered for p in capacity.points if not p.sustained]
        if not failed:
            break
        low, high = capacity.max_sustained, min(failed)
        if high - low < 0.03 * high:
            break
        point = _measure(target, body, (low + high) / 2, plan)
        capacity.points.append(point)
        log(f"  {target.name}: {_describe(point)}")
    return capacity


def _describe(point: LoadPoint) -> str:
    r = point.result
    verdict = "ok" if point.sustained else "NOT sustained"
    return (
        f"offered {point.offered:7.0f} req/s -> {r.rate:7.0f} req/s, p50 {r.p50_ms:6.1f} ms, "
        f"p99 {r.p99_ms:6.1f} ms, errors {r.errors}: {verdict}"
    )
