"""Risk control: a key seen from more distinct client IPs than a threshold within a window has probably
leaked (for example into a web page), and is suspended. Keys marked as shared are exempt."""

from __future__ import annotations

import time
from collections.abc import Callable


class LeakDetector:
    def __init__(self, max_ips: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_ips = max_ips
        self.window = window
        self.clock = clock
        self._seen: dict[str, dict[str, float]] = {}

    def observe(self, key_id: str, client_ip: str | None) -> str | None:
        """Record a use; returns the suspension reason when this use crosses the threshold."""
        if client_ip is None or self.max_ips <= 0:
            return None
        now = self.clock()
        seen = self._seen.setdefault(key_id, {})
        seen[client_ip] = now
        for ip in [ip for ip, at in seen.items() if at <= now - self.window]:
            del seen[ip]
        if len(seen) <= self.max_ips:
            return None
        minutes = max(1, round(self.window / 60))
        self._seen.pop(key_id, None)
        return (
            f"This API key was suspended by risk control: it was used from {len(seen)} different IP "
            f"addresses within {minutes} minutes, which suggests it has leaked (for example into a web page "
            "or a public repository). Keep keys on your server, then create a new key and use that one."
        )
