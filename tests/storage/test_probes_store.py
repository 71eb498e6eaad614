"""Probe results and checks in storage (migration 9), on SQLite and PostgreSQL: saved per run, read back per
channel and model in time order, and each channel's latest failures."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from aicy.storage.db import create_engine, migrate
from aicy.storage.probes import ProbeStore, RunInfo
from tests.support import drop_postgres_database, fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/probes.db"
        return
    url = fresh_postgres_database()
    yield url
    drop_postgres_database(url)


def result(prompt: str, answer: str, **fields: Any) -> dict[str, Any]:
    return {
        "prompt_id": prompt,
        "effort": None,
        "max_output_tokens": 64,
        "limit_case": False,
        "answer": answer,
        "reasoning": "",
        "latency_ms": 120,
        "ttft_ms": 40,
        "input_tokens": 20,
        "cached_tokens": 0,
        "output_tokens": 3,
        "reasoning_tokens": None,
        "own_input_tokens": 20,
        "own_output_tokens": 3,
        "status": "completed",
        "reason": None,
        "cost": 7,
        **fields,
    }


def check(name: str, verdict: str) -> dict[str, Any]:
    return {
        "name": name,
        "verdict": verdict,
        "reason": f"{name} {verdict}",
        "evidence": [{"prompt": "juice"}],
    }


def test_runs_are_kept_and_the_latest_failures_flag_a_channel(database_url: str) -> None:
    async def scenario() -> None:
        engine = create_engine(database_url)
        try:
            assert 9 in await migrate(engine)
            store = ProbeStore(engine)
            first = RunInfo("probe_1", "default", "chan-a", "gpt-5", "gpt-5-2025", 1000)
            await store.save(first, [result("capital", "Paris.")], [check("fingerprint", "fail")])
            # a later run of the same channel and model replaces the verdicts that count
            later = RunInfo("probe_2", "default", "chan-a", "gpt-5", "gpt-5-2025", 2000)
            await store.save(
                later, [result("capital", "Paris!", reasoning_tokens=0)], [check("fingerprint", "pass")]
            )
            other = RunInfo("probe_3", "default", "chan-b", "gpt-5", None, 3000)
            await store.save(
                other, [result("juice", "Juice: 64")], [check("effort", "fail"), check("usage", "pass")]
            )

            rows = await store.results(channel="chan-a", model="gpt-5")
            assert [(r["run_id"], r["answer"], r["reasoning_tokens"]) for r in rows] == [
                ("probe_1", "Paris.", None),
                ("probe_2", "Paris!", 0),
            ]
            assert rows[0]["upstream_model"] == "gpt-5-2025" and rows[0]["suite"] == "default"
            assert [r["run_id"] for r in await store.results(channel="chan-a", before_run="probe_2")] == [
                "probe_1"
            ]
            checks = await store.checks(channel="chan-b")
            assert [(c["name"], c["verdict"], c["evidence"]) for c in checks] == [
                ("effort", "fail", [{"prompt": "juice"}]),
                ("usage", "pass", [{"prompt": "juice"}]),
            ]
            # old timestamps fall out of a `days` window (these runs are from 1970)
            assert await store.results(days=1) == []
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_latest_failures(database_url: str) -> None:
    async def scenario() -> None:
        engine = create_engine(database_url)
        try:
            await migrate(engine)
            store = ProbeStore(engine)
            now = int(time.time())
            await store.save(
                RunInfo("r1", "s", "a", "gpt-5", None, now - 10), [], [check("fingerprint", "fail")]
            )
            await store.save(RunInfo("r2", "s", "a", "gpt-5", None, now), [], [check("fingerprint", "pass")])
            await store.save(RunInfo("r3", "s", "b", "gpt-5", None, now), [], [check("effort", "fail")])
            await store.save(RunInfo("r4", "s", "b", "gpt-5-mini", None, now), [], [check("usage", "pass")])
            assert await store.latest_failures() == {"a": [], "b": ["effort (gpt-5)"]}
        finally:
            await engine.dispose()

    asyncio.run(scenario())
