"""Probe history as figures per run, and the latest verdicts per channel and model (``aicy probe report``)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FIGURES = ("latency_ms", "ttft_ms", "input_tokens", "output_tokens", "reasoning_tokens", "cost")


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One run's figures: medians of latency and time to first token, sums of tokens and cost."""

    run_id: str
    created_at: int
    channel: str
    model: str
    figures: dict[str, float | None]


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def _total(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return float(sum(present)) if present else None


def run_figures(results: Sequence[dict[str, Any]]) -> list[RunFigures]:
    """Stored results grouped by run, oldest first."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in results:
        runs.setdefault(row["run_id"], []).append(row)
    figures = []
    for run_id, rows in runs.items():
        first = rows[0]
        column = {name: [r[name] for r in rows] for name in FIGURES}
        values = {
            "latency_ms": _median(column["latency_ms"]),
            "ttft_ms": _median(column["ttft_ms"]),
            **{name: _total(column[name]) for name in FIGURES[2:]},
        }
        figures.append(RunFigures(run_id, first["created_at"], first["channel"], first["model"], values))
    return sorted(figures, key=lambda f: f.created_at)


def latest_checks(checks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The checks of each channel and model's latest run."""
    latest: dict[tuple[str, str], str] = {}
    for row in checks:
        latest[(row["channel"], row["model"])] = row["run_id"]
    wanted = set(latest.values())
    return [row for row in checks if row["run_id"] in wanted]
