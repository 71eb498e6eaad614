"""Failed attempts (console sign-ins) counted per key in a sliding window, in this process."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable


class FailureLimiter:
    """At most ``limit`` failures per key within ``window`` seconds; past that a key is blocked until its
    oldest failure leaves the window."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, keys: Iterable[str]) -> float | None:
        """Seconds until every key may try again, or None when none is blocked."""
        now = self.clock()
        waits = [
            failures[0] + self.window - now
            for failures in (self._recent(k, now) for k in keys)
            if len(failures) >= self.limit
        ]
        return max(waits) if waits else None

    def fail(self, keys: Iterable[str]) -> None:
        now = self.clock()
        for key in keys:
            self._recent(key, now)
            self._failures.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)
