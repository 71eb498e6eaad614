"""A probe run from start to end: ask the suite, compare with the channel's history, check, record."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from aicy.serving.probes.checks import Check, run_checks
from aicy.serving.probes.runner import Result, Target, run_suite
from aicy.serving.probes.suite import Suite
from aicy.storage.probes import ProbeStore, RunInfo

HISTORY_DAYS = 30  # how far back ``drift`` looks


@dataclass(frozen=True, slots=True)
class ProbeRun:
    info: RunInfo
    results: list[Result]
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "fail"]


async def probe(target: Target, suite: Suite, store: ProbeStore | None, label: str | None = None) -> ProbeRun:
    """Run ``suite`` against ``target``; with a store, compare with and add to its history. ``label`` names
    the target in the history (default: the channel's name)."""
    channel = target.channel
    info = RunInfo(
        run_id=f"probe_{secrets.token_hex(8)}",
        suite=suite.name,
        channel=label or channel.name,
        model=target.model.id,
        upstream_model=channel.upstream_model(target.model.id),
        created_at=int(time.time()),
    )
    results = await run_suite(target, suite)
    history = await store.results(channel=info.channel, model=info.model, days=HISTORY_DAYS) if store else []
    checks = run_checks(results, history)
    if store is not None:
        await store.save(info, [r.to_row() for r in results], [c.to_json() for c in checks])
    return ProbeRun(info, results, checks)
