"""Circuit breakers: a channel that keeps failing, or refuses our key, leaves rotation until it recovers.

closed --(``failure_threshold`` failures in a row, or one auth failure)--> open
open --(cooldown elapsed)--> half-open: the prober (or, when no channel is closed, a request) tries it
half-open --success--> closed; --failure--> open again with a longer cooldown (doubling, capped)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class Breaker:
    failure_threshold: int = 3
    base_cooldown: float = 10.0
    max_cooldown: float = 300.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    cooldown: float = 0.0
    last_error: str | None = None

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.cooldown = 0.0
        self.last_error = None

    def record_failure(self, reason: str, *, fatal: bool = False) -> None:
        self.failures += 1
        self.last_error = reason
        if fatal or self.failures >= self.failure_threshold or self.opened_at is not None:
            self._open()

    def _open(self) -> None:
        self.cooldown = min(self.max_cooldown, self.cooldown * 2 if self.cooldown else self.base_cooldown)
        self.opened_at = self.clock()
