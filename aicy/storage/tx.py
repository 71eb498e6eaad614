"""Short write transactions on the request's hot path, written once as plain SQL over a tiny interface.

The same transaction function runs in two ways: on SQLite, in one dedicated thread that owns a ``sqlite3``
connection (one thread hop per transaction and no per-statement overhead: about 25 µs where the async
driver took about a millisecond); on any other database, inside SQLAlchemy's async engine through
``run_sync``. SQL uses ``:name`` parameters, which both understand.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from aicy.storage.checkpoint import WAL_KEEP_BYTES, WalCheckpointer

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TxResult:
    rowcount: int
    rows: list[tuple[Any, ...]]

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


class Tx(Protocol):
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> TxResult: ...


class _SqliteTx:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> TxResult:
        cursor = self._connection.execute(sql, dict(params or {}))
        rows = cursor.fetchall() if cursor.description else []
        return TxResult(cursor.rowcount, rows)


class _AlchemyTx:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> TxResult:
        result = self._connection.execute(text(sql), dict(params or {}))
        rows = [tuple(r) for r in result.fetchall()] if result.returns_rows else []
        return TxResult(result.rowcount, rows)


class Transactor:
    """Runs ``fn(tx)`` as one transaction: committed if it returns, rolled back if it raises."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        url = make_url(str(engine.url))
        self._sqlite_path = url.database if url.get_backend_name() == "sqlite" else None
        self._thread: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None
        self._checkpointer: WalCheckpointer | None = None

    async def run(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        if self._sqlite_path is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(lambda sync: fn(_AlchemyTx(sync)))
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aicy-sqlite")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_thread, fn, write)

    def _in_thread(self, fn: Callable[[Tx], T], write: bool) -> T:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = fn(_SqliteTx(connection))
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            assert self._sqlite_path is not None
            Path(self._sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self._sqlite_path, isolation_level=None, check_same_thread=False)
            pragmas = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", "foreign_keys=ON")
            for pragma in (*pragmas, "wal_autocheckpoint=0"):  # see aicy.storage.checkpoint
                connection.execute(f"PRAGMA {pragma}")
            connection.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
            self._connection = connection
            self._checkpointer = WalCheckpointer(self._sqlite_path, self._restart_wal)
        return self._connection

    def _restart_wal(self) -> None:
        """Called by the checkpointer's thread: a restarting checkpoint between two hot transactions."""
        thread = self._thread
        if thread is not None:
            thread.submit(self._restart_in_thread).result()

    def _restart_in_thread(self) -> None:
        if self._connection is not None:
            WalCheckpointer.checkpoint(self._connection, "RESTART")

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._thread is not None:
            self._thread.submit(self._close_connection).result()
            self._thread.shutdown(wait=True)
            self._thread = None

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
