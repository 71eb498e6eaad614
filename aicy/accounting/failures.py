"""Failed attempts per subject (an account, a client IP) in a sliding window: guessing top-up codes stops
at ``max_failures`` per ``window`` seconds, with a 429 that says how long to wait.

One process counts its own failures; several replicas need a shared counter (Redis) to hold the limit
across them, like the per-key rate limits (``accounting.ratelimit``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable

from aicy.errors import RateLimited

MAX_SUBJECTS = 100_000
"""Subjects remembered at most; beyond that the stale ones are dropped, then (a flood) all of them."""


class FailureLimiter:
    def __init__(self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, subject: str, now: float) -> deque[float] | None:
        failures = self._failures.get(subject)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if failures is not None and not failures:
            del self._failures[subject]
            return None
        return failures

    def check(self, subjects: Iterable[str], what: str) -> None:
        """429 ``rate_limit_exceeded`` once any subject has used up its failures (``what``: the attempts)."""
        now = self.clock()
        waits = []
        for subject in subjects:
            failures = self._recent(subject, now)
            if failures is not None and len(failures) >= self.max_failures:
                waits.append(failures[len(failures) - self.max_failures] + self.window - now)
        if waits:
            seconds = max(1, math.ceil(max(waits)))
            minutes = max(1, round(self.window / 60))
            raise RateLimited(
                f"Too many failed {what} from this account or address: at most {self.max_failures} "
                f"within {minutes} minutes. Please try again in {seconds}s.",
                type="requests",
                headers={"retry-after": str(seconds), "x-should-retry": "false"},
            )

    def fail(self, subjects: Iterable[str]) -> None:
        now = self.clock()
        if len(self._failures) >= MAX_SUBJECTS:
            for subject in list(self._failures):
                self._recent(subject, now)
            if len(self._failures) >= MAX_SUBJECTS:
                self._failures.clear()
        for subject in subjects:
            self._failures.setdefault(subject, deque()).append(now)

    def clear(self, subject: str) -> None:
        """Forget ``subject``'s failures (it succeeded)."""
        self._failures.pop(subject, None)
