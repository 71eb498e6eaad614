"""A short-lived cache of key lookups, so most requests skip the database for authentication.

Changes made through this process (admin API, risk control) clear it at once; changes made elsewhere (the
CLI, another replica) take effect within ``ttl`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aicy.domain.keys import Principal

MAX_ENTRIES = 100_000


class KeyCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def get(self, secret_hash: str) -> tuple[bool, Principal | None]:
        """(found, principal); a cached ``None`` is a key known not to exist."""
        entry = self._entries.get(secret_hash)
        if entry is None or entry[0] < self.clock():
            return False, None
        return True, entry[1]

    def put(self, secret_hash: str, principal: Principal | None) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[secret_hash] = (self.clock() + self.ttl, principal)

    def clear(self) -> None:
        self._entries.clear()
