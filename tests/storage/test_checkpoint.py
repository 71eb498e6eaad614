"""WAL checkpoints run beside the hot connection, and the WAL still starts over."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from aicy.storage.checkpoint import WalCheckpointer

ROWS = 3000
ROW_BYTES = 1000


def hot_connection(path: str) -> sqlite3.Connection:
    hot = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    hot.execute("PRAGMA journal_mode=WAL")
    hot.execute("PRAGMA wal_autocheckpoint=0")  # as aicy's Transactor sets it
    hot.execute("CREATE TABLE t (x BLOB)")
    return hot


def write_rows(hot: sqlite3.Connection, lock: threading.Lock) -> None:
    for _ in range(ROWS):
        with lock:  # one transaction at a time, as on the Transactor's thread
            hot.execute("INSERT INTO t VALUES (randomblob(:n))", {"n": ROW_BYTES})


def test_without_checkpoints_the_wal_only_grows(tmp_path: Path) -> None:
    path = str(tmp_path / "plain.db")
    hot = hot_connection(path)
    write_rows(hot, threading.Lock())
    assert os.path.getsize(path + "-wal") > ROWS * ROW_BYTES
    hot.close()


def test_the_checkpointer_copies_the_wal_and_restarts_it_on_the_hot_thread(tmp_path: Path) -> None:
    path = str(tmp_path / "checkpointed.db")
    hot = hot_connection(path)
    lock = threading.Lock()
    restarts: list[int] = []

    def restart() -> None:
        with lock:
            restarts.append(WalCheckpointer.checkpoint(hot, "RESTART"))

    checkpointer = WalCheckpointer(path, restart, interval=0.005, restart_bytes=256 * 1024)
    try:
        write_rows(hot, lock)
    finally:
        checkpointer.close()
    assert restarts, "the WAL never reached the restart size"
    with lock:
        _, frames, copied = hot.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    # The WAL started over (it holds only the frames since the last restart), all copied into the database.
    # (Its file size is not checked: under a loaded machine the checkpointer's thread may run late.)
    assert frames < ROWS / 2 and copied == frames
    [[count]] = sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchall()
    assert count == ROWS
    hot.close()
