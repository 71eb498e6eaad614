"""``python -m aicybench``: the whole benchmark in one run, about eight minutes on two cores.

Order: start the mock; direct; aicy relaying (skipped until aicy has channels); LiteLLM; then aicy's
embedded engine against raw llama-cpp-python; then a long prompt against a running stream (prefill).
Writes ``latest.json``, ``latest.md`` and the plot.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from aicybench import engine, overhead, prefill, report, targets
from aicybench.capacity import CapacityPlan
from aicybench.procs import Unavailable
from aicybench.wrk import require_wrk

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent
Launcher = Callable[[targets.Tools, str], AbstractContextManager[targets.Target]]
GATEWAYS: dict[str, Launcher] = {"aicy": targets.aicy_gateway, "litellm": targets.litellm_gateway}
SECTIONS = ("direct", "aicy", "litellm", "engine", "prefill")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m aicybench", description=__doc__)
    p.add_argument(
        "--out", type=Path, default=BENCH_DIR / "results", help="folder for latest.json and the plot"
    )
    p.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    p.add_argument(
        "--quick", action="store_true", help="short runs, to check the harness (figures are rough)"
    )
    p.add_argument("--aicy", type=Path, default=REPO / ".venv" / "bin" / "aicy")
    p.add_argument("--litellm", type=Path, default=BENCH_DIR / ".venv-litellm" / "bin" / "litellm")
    p.add_argument("--slo-p99-ms", type=float, default=50.0, help="p99 target for the capacity figure")
    p.add_argument(
        "--capacity-delay-ms", type=float, default=20.0, help="mock delay during the capacity sweep"
    )
    p.add_argument("--chunk-gap-ms", type=float, default=0.0, help="mock delay between streamed token events")
    p.add_argument(
        "--wait-idle", type=float, default=0.0, help="wait up to this many seconds for a quiet machine"
    )
    return p.parse_args(argv)


def _plans(
    args: argparse.Namespace,
) -> tuple[overhead.OverheadPlan, engine.EnginePlan, prefill.PrefillPlan]:
    cap = CapacityPlan(slo_p99_ms=args.slo_p99_ms, delay_ms=args.capacity_delay_ms)
    over = overhead.OverheadPlan(chunk_gap_ms=args.chunk_gap_ms, capacity=cap)
    eng = engine.EnginePlan()
    long = prefill.PrefillPlan()
    if args.quick:
        cap = dataclasses.replace(
            cap,
            seconds=2,
            calibration_seconds=1,
            fractions=(0.2, 0.6, 0.9, 1.1),
            refine_steps=1,
            settle_s=0.5,
        )
        over = dataclasses.replace(over, rounds=1, latency_seconds=2, streams_per_round=10, capacity=cap)
        eng = dataclasses.replace(eng, max_tokens=48, single_repeats=2, concurrent_rounds=1)
        long = dataclasses.replace(long, long_items=250, rounds=1, short_delay_s=1.0)
    return over, eng, long


def _version(python: Path, package: str) -> str | None:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def _meta(tools: targets.Tools) -> dict[str, Any]:
    wrk_version = subprocess.run([require_wrk(), "-v"], capture_output=True, text=True, check=False)
    return {
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0]
        if wrk_version.stdout or wrk_version.stderr
        else None,
        "aicy": _version(tools.aicy.parent / "python", "aicy"),
        "litellm": _version(tools.litellm.parent / "python", "litellm") if tools.litellm.exists() else None,
    }


def _guarded(name: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one section; a path that cannot run is recorded as skipped, with why, and the run goes on."""
    try:
        out = measure()
    except Unavailable as exc:
        print(f"[{name}] SKIPPED: {exc}")
        out = {"skipped": str(exc)}
    except Exception as exc:
        traceback.print_exc()
        print(f"[{name}] FAILED: {exc}")
        out = {"skipped": f"failed: {exc}"}
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def _quiet_machine(wait_s: float) -> float:
    """Wait (up to ``wait_s``) for a 1-minute load average under 0.5; warn when it is still higher."""
    deadline = time.monotonic() + wait_s
    while os.getloadavg()[0] > 0.5 and time.monotonic() < deadline:
        time.sleep(5)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(
            f"WARNING: the machine is busy (1-minute load {load:.2f} on {os.cpu_count()} cores); "
            "another process competes for the cores and the figures will be noisy (engine ones badly)."
        )
    return load


def _gateway(
    name: str, tools: targets.Tools, mock: str, bodies: overhead.Bodies, plan: overhead.OverheadPlan
) -> dict[str, Any]:
    print(f"[{name}] starting")
    with GATEWAYS[name](tools, mock) as gateway:
        return overhead.measure(gateway, targets.direct(mock), mock, bodies, plan)


def _relay_sections(
    wanted: set[str], tools: targets.Tools, plan: overhead.OverheadPlan
) -> Iterator[tuple[str, dict[str, Any]]]:
    if not wanted & {"direct", "aicy", "litellm"}:
        return
    bodies = overhead.Bodies.write(tools.work, targets.BENCH_MODEL)
    with targets.mock_upstream(tools) as mock:
        if "direct" in wanted:
            print("[direct] measuring the mock alone")
            yield (
                "direct",
                _guarded("direct", lambda: overhead.measure(None, targets.direct(mock), mock, bodies, plan)),
            )
        for name in ("aicy", "litellm"):
            if name in wanted:
                yield name, _guarded(name, lambda n=name: _gateway(n, tools, mock, bodies, plan))  # type: ignore[misc]


def _engine(tools: targets.Tools, plan: engine.EnginePlan) -> dict[str, Any]:
    print("[engine] raw llama-cpp-python and aicy's engine, runs alternating")
    python = tools.aicy.parent / "python"
    with engine.raw_engine(python, plan, tools.work, tools.logs) as raw, targets.aicy_engine(tools) as target:
        try:
            return {"plan": dataclasses.asdict(plan), **engine.measure(raw, target, plan)}
        except Exception:
            target.check_alive()  # a dead server says so, with its log
            raise


def _prefill(tools: targets.Tools, plan: prefill.PrefillPlan) -> dict[str, Any]:
    print("[prefill] a long prompt against a running stream and a short request")
    with targets.aicy_engine(tools) as target:
        try:
            return {"plan": dataclasses.asdict(plan), **prefill.measure(target, plan)}
        except Exception:
            target.check_alive()
            raise


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    wanted = set(args.only.split(","))
    over_plan, engine_plan, prefill_plan = _plans(args)
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    _quiet_machine(args.wait_idle)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aicy-bench-") as tmp:
        tools = targets.Tools(args.aicy, args.litellm, BENCH_DIR, Path(tmp), logs)
        results: dict[str, Any] = {"meta": _meta(tools), "plan": dataclasses.asdict(over_plan), "paths": {}}
        results["meta"]["quick"] = args.quick
        for name, measured in _relay_sections(wanted, tools, over_plan):
            results["paths"][name] = measured
        if "engine" in wanted:
            results["engine"] = _guarded("engine", lambda: _engine(tools, engine_plan))
        if "prefill" in wanted:
            results["prefill"] = _guarded("prefill", lambda: _prefill(tools, prefill_plan))
    results["meta"]["duration_s"] = round(time.monotonic() - began, 1)
    _write(results, args, over_plan)


def _write(results: dict[str, Any], args: argparse.Namespace, plan: overhead.OverheadPlan) -> None:
    slo, delay = plan.capacity.slo_p99_ms, plan.capacity.delay_ms
    report.write_json(results, args.out / "latest.json")
    parts = [f"# aicy benchmark, {results['meta']['started_at']}"]
    if results["paths"]:
        parts += [
            "## Gateway overhead (medians of rounds)",
            report.overhead_table(results["paths"], slo, delay),
        ]
        if report.plot_latency_vs_load(results["paths"], slo, delay, args.out / "latency_vs_load.png"):
            parts.append(f"Plot: {args.out / 'latency_vs_load.png'}")
    if "engine" in results:
        parts += ["## Embedded engine (medians)", report.engine_table(results["engine"])]
    if "prefill" in results:
        parts += ["## A long prompt against the others (medians)", report.prefill_table(results["prefill"])]
    text = "\n\n".join(parts) + "\n"
    (args.out / "latest.md").write_text(text)
    print("\n" + text)
    print(f"Raw figures: {args.out / 'latest.json'} (run took {results['meta']['duration_s']:.0f} s)")
