"""WAL checkpoints off the request path.

SQLite's automatic checkpoint runs inside a committing transaction: every ~1,000 WAL pages one request's
reservation or settlement also copies 4 MB of WAL into the database and fsyncs it (10–15 ms here, about one
request in a hundred: the whole p99). aicy's connections turn it off, and this thread checkpoints instead
with a connection of its own, ten times a second:

1. a passive checkpoint copies and syncs what the WAL holds without blocking anyone; under steady writes it
   never catches up with the last frame, so on its own SQLite would never start the WAL over;
2. then, once the WAL holds more than ``WAL_RESTART_BYTES``, ``restart`` runs a restarting checkpoint on the
   Transactor's worker thread: it copies the frames written during the passive one (a few milliseconds at
   full load), transactions on the event loop meanwhile find the database busy and queue up behind it on
   that thread (instead of sleeping in SQLite's busy handler, 1, 2, 5… ms), and the next write starts the
   WAL from its beginning again. The WAL is large so that this happens every few seconds at most.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger("aicy.storage")

CHECKPOINT_INTERVAL_SECONDS = 0.1
WAL_RESTART_BYTES = 64 * 1024 * 1024
WAL_KEEP_BYTES = 80 * 1024 * 1024  # a restarted WAL larger than this is truncated to it


class WalCheckpointer:
    def __init__(
        self,
        path: str,
        restart: Callable[[], None],
        interval: float = CHECKPOINT_INTERVAL_SECONDS,
        restart_bytes: int = WAL_RESTART_BYTES,
    ) -> None:
        self._path = path
        self._restart = restart
        self._restart_bytes = restart_bytes
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aicy-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout=10000")
            page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])
            while not self._stop.wait(self._interval):
                self.round(connection, page_size)
            self.round(connection, page_size)
        finally:
            connection.close()

    def round(self, connection: sqlite3.Connection, page_size: int) -> None:
        frames = self.checkpoint(connection, "PASSIVE")
        if frames * page_size > self._restart_bytes:
            try:
                self._restart()
            except Exception:  # the hot connection is closing, or busy: the next round tries again
                log.debug("WAL restart skipped", exc_info=True)

    @staticmethod
    def checkpoint(connection: sqlite3.Connection, mode: str) -> int:
        """Run a checkpoint; returns how many frames the WAL holds (0 if the checkpoint could not run)."""
        try:
            row = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:  # busy or locked now: the next round tries again
            log.debug("WAL checkpoint skipped", exc_info=True)
            return 0
        return int(row[1]) if row and row[1] is not None and row[1] > 0 else 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
