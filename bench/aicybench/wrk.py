"""Driving wrk: closed-loop runs (concurrency 1) and constant-rate runs through ``load.lua``."""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from aicybench.targets import Target

_SCRIPT = Path(__file__).with_name("load.lua")
_MARK = "WRK_JSON "


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rate": round(self.rate, 1),
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (make bench does it)")
    return path


def body_file(folder: Path, name: str, body: dict[str, Any]) -> Path:
    path = folder / f"{name}.json"
    path.write_bytes(orjson.dumps(body))
    return path


def run(
    target: Target,
    api: str,
    body: Path,
    *,
    connections: int,
    seconds: int,
    rate: float = 0.0,
    timeout_s: int = 10,
) -> WrkResult:
    """One wrk run with one thread; ``rate`` > 0 sends at that constant rate (requests/s)."""
    argv = [
        require_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s",
        "-s", str(_SCRIPT), target.url(api), "--", str(body), target.authorization or "-", f"{rate:.3f}",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"wrk exited with {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
        )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    raw = orjson.loads(line.removeprefix(_MARK))
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        errors=sum(v for k, v in raw.items() if k.startswith("errors_")),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["latency_max_us"] / 1000,
    )


def connections_for(rate: float, slo_ms: float) -> int:
    """Enough connections that twice the SLO's worth of requests can be in flight at ``rate``."""
    return max(8, min(1000, math.ceil(rate * 2 * slo_ms / 1000) + 8))
