"""Probe runs: each case's result and each check's verdict, kept to compare a channel with its own past."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.schema import probe_checks, probe_results


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Who was probed: ``channel`` is a channel's name, or the base URL of a customer-mode run."""

    run_id: str
    suite: str
    channel: str
    model: str
    upstream_model: str | None
    created_at: int


LATEST_DAYS = 30  # a channel's latest run older than this no longer flags it


class ProbeStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(
        self, run: RunInfo, results: Sequence[dict[str, Any]], checks: Sequence[dict[str, Any]]
    ) -> None:
        """One run: ``results`` are result rows (``Result.to_row``), ``checks`` are ``Check.to_json``."""
        head = {
            "run_id": run.run_id,
            "created_at": run.created_at,
            "channel": run.channel,
            "model": run.model,
        }
        result_rows = [
            {**head, "suite": run.suite, "upstream_model": run.upstream_model, **row} for row in results
        ]
        check_rows = [
            {
                **head,
                "name": c["name"],
                "verdict": c["verdict"],
                "reason": c["reason"],
                "evidence": orjson.dumps(c["evidence"]).decode(),
            }
            for c in checks
        ]
        async with self.engine.begin() as conn:
            if result_rows:
                await conn.execute(probe_results.insert(), result_rows)
            if check_rows:
                await conn.execute(probe_checks.insert(), check_rows)

    async def results(
        self,
        *,
        channel: str | None = None,
        model: str | None = None,
        days: float | None = None,
        before_run: str | None = None,
        limit: int = 5000,
    ) -> list[dict[str, Any]]:
        """Stored results, oldest first (``before_run``: leave that run out)."""
        query = select(probe_results).order_by(probe_results.c.created_at, probe_results.c.id).limit(limit)
        if channel is not None:
            query = query.where(probe_results.c.channel == channel)
        if model is not None:
            query = query.where(probe_results.c.model == model)
        if days is not None:
            query = query.where(probe_results.c.created_at >= int(time.time() - days * 86400))
        if before_run is not None:
            query = query.where(probe_results.c.run_id != before_run)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]

    async def checks(
        self, *, channel: str | None = None, model: str | None = None, days: float | None = None
    ) -> list[dict[str, Any]]:
        """Stored verdicts, oldest first, ``evidence`` parsed back into JSON."""
        query = select(probe_checks).order_by(probe_checks.c.created_at, probe_checks.c.id)
        if channel is not None:
            query = query.where(probe_checks.c.channel == channel)
        if model is not None:
            query = query.where(probe_checks.c.model == model)
        if days is not None:
            query = query.where(probe_checks.c.created_at >= int(time.time() - days * 86400))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {**dict(r._mapping), "evidence": orjson.loads(r.evidence) if r.evidence else None} for r in rows
        ]

    async def version(self) -> int:
        """Grows with every run saved: lets a server notice new verdicts cheaply."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.max(probe_checks.c.id)))).scalar() or 0)

    async def last_runs(self) -> dict[str, int]:
        """When each channel was last probed (Unix time)."""
        query = select(probe_checks.c.channel, func.max(probe_checks.c.created_at)).group_by(
            probe_checks.c.channel
        )
        async with self.engine.connect() as conn:
            return {row[0]: int(row[1]) for row in (await conn.execute(query)).all()}

    async def latest_failures(self) -> dict[str, list[str]]:
        """Each channel's checks that failed in its latest run of each model (channels with none: [])."""
        c = probe_checks.c
        since = int(time.time() - LATEST_DAYS * 86400)
        last_ids = (
            select(func.max(c.id)).where(c.created_at >= since).group_by(c.channel, c.model).scalar_subquery()
        )
        last_runs = select(c.run_id).where(c.id.in_(last_ids))
        query = select(c.channel, c.model, c.name, c.verdict).where(c.run_id.in_(last_runs)).order_by(c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        failed: dict[str, list[str]] = {}
        for channel, model, name, verdict in rows:
            names = failed.setdefault(channel, [])
            if verdict == "fail":
                names.append(f"{name} ({model})")
        return failed
