"""SQLite transactions run on the loop; on the waiting thread while another writer holds the lock."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from aicy.storage.tx import Transactor, Tx, _to_the_end


def insert(value: int) -> Any:
    def fn(tx: Tx) -> int:
        tx.execute("INSERT INTO t (v) VALUES (:v)", {"v": value})
        return threading.get_ident()

    return fn


def test_a_transaction_runs_on_the_loop_and_waits_elsewhere_for_a_lock(tmp_path: Path) -> None:
    path = tmp_path / "tx.db"
    setup = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (v INTEGER)")

    async def scenario() -> tuple[int, int, int, int, float]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        transactor = Transactor(engine)
        loop_thread = threading.get_ident()
        try:
            free = await transactor.run(insert(1))
            setup.execute("BEGIN IMMEDIATE")  # another writer holds the lock for 0.3 s
            setup.execute("INSERT INTO t (v) VALUES (2)")
            threading.Timer(0.3, lambda: setup.execute("COMMIT")).start()
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            started = time.monotonic()
            locked = await transactor.run(insert(3))
            waited = time.monotonic() - started
            ticker.cancel()
            return loop_thread, free, locked, ticks, waited
        finally:
            transactor.close()
            await engine.dispose()

    loop_thread, free, locked, ticks, waited = asyncio.run(scenario())
    assert free == loop_thread  # no lock held: on the loop itself
    assert locked != loop_thread and waited >= 0.25  # waited for the lock on the worker thread ...
    assert ticks >= 10  # ... while the loop went on serving
    assert [v for (v,) in sqlite3.connect(path).execute("SELECT v FROM t ORDER BY rowid")] == [1, 2, 3]


def test_a_transaction_asked_to_finish_commits_before_the_caller_sees_cancelling(tmp_path: Path) -> None:
    """A settlement waiting for the lock when its request is cancelled still commits, and the request's
    cancellation surfaces only after the commit (balance reads that wait for settlements see the charge)."""
    path = tmp_path / "tx.db"
    setup = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (v INTEGER)")

    async def scenario() -> tuple[bool, list[int]]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        transactor = Transactor(engine)
        try:
            await transactor.run(insert(1))
            setup.execute("BEGIN IMMEDIATE")  # another writer holds the lock for 0.3 s
            threading.Timer(0.3, lambda: setup.execute("COMMIT")).start()
            settling = asyncio.create_task(transactor.run(insert(2), finish=True))
            await asyncio.sleep(0.1)  # queued on the worker thread, waiting for the lock
            settling.cancel()
            cancelled = False
            try:
                await settling
            except asyncio.CancelledError:
                cancelled = True
            seen = [v for (v,) in sqlite3.connect(path).execute("SELECT v FROM t ORDER BY rowid")]
            return cancelled, seen
        finally:
            transactor.close()
            await engine.dispose()

    cancelled, seen_when_cancelled = asyncio.run(scenario())
    assert cancelled
    assert seen_when_cancelled == [1, 2]  # committed before the cancellation reached the caller


def test_a_settlement_that_fails_after_its_caller_was_cancelled_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cancelled caller never sees the error of the work it left running: it must not vanish unlogged."""
    path = tmp_path / "tx.db"
    setup = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (v INTEGER)")

    def failing(tx: Tx) -> None:
        tx.execute("INSERT INTO t (v) VALUES (1)")
        raise RuntimeError("the settlement's own error")

    async def scenario() -> bool:
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        transactor = Transactor(engine)
        try:
            await transactor.run(insert(0))
            setup.execute("BEGIN IMMEDIATE")  # another writer holds the lock for 0.3 s
            threading.Timer(0.3, lambda: setup.execute("COMMIT")).start()
            settling = asyncio.create_task(transactor.run(failing, finish=True))
            await asyncio.sleep(0.1)  # queued on the worker thread, waiting for the lock
            settling.cancel()
            try:
                await settling
            except asyncio.CancelledError:
                return True
            return False
        finally:
            transactor.close()
            await engine.dispose()

    with caplog.at_level(logging.ERROR, logger="aicy.storage"):
        assert asyncio.run(scenario())  # the caller still gets its cancellation
    (record,) = [r for r in caplog.records if r.name == "aicy.storage"]
    assert record.levelno == logging.ERROR and "after its caller was cancelled" in record.getMessage()
    assert record.exc_info is not None and "the settlement's own error" in str(record.exc_info[1])
    assert [v for (v,) in sqlite3.connect(path).execute("SELECT v FROM t")] == [0]  # rolled back


def test_work_left_to_finish_logs_its_failure_on_any_database(caplog: pytest.LogCaptureFixture) -> None:
    """The same through ``_to_the_end`` alone, as the PostgreSQL path (SQLAlchemy's ``run_sync``) uses it."""

    async def work() -> None:
        await asyncio.sleep(0.05)
        raise ValueError("failed while nobody waited")

    async def scenario() -> None:
        task = asyncio.create_task(_to_the_end(work()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="aicy.storage"):
        asyncio.run(scenario())
    assert any(
        r.exc_info is not None and "failed while nobody waited" in str(r.exc_info[1]) for r in caplog.records
    )
