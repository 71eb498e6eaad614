"""Per-key requests-per-minute and tokens-per-minute, as sliding one-minute windows held by the app.

One process counts its own traffic; several replicas need a shared counter (Redis) to hold the limits
across them.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from aicy.domain.keys import KeyPolicy
from aicy.errors import RateLimited

WINDOW = 60.0


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._requests: dict[str, deque[float]] = {}
        self._tokens: dict[str, deque[tuple[float, int]]] = {}

    def _trim(self, key_id: str, now: float) -> None:
        requests = self._requests.get(key_id)
        while requests and requests[0] <= now - WINDOW:
            requests.popleft()
        tokens = self._tokens.get(key_id)
        while tokens and tokens[0][0] <= now - WINDOW:
            tokens.popleft()

    def admit(self, key_id: str, policy: KeyPolicy) -> None:
        """Count one request, or raise 429 with how long to wait."""
        if policy.rpm is None and policy.tpm is None:
            return
        now = self.clock()
        self._trim(key_id, now)
        requests = self._requests.setdefault(key_id, deque())
        if policy.rpm is not None and len(requests) >= policy.rpm:
            wait = requests[0] + WINDOW - now
            raise _limited("requests", f"Limit {policy.rpm}, Used {len(requests)}, Requested 1", wait)
        tokens = self._tokens.get(key_id)
        used = sum(n for _, n in tokens) if tokens else 0
        if policy.tpm is not None and tokens and used >= policy.tpm:
            wait = tokens[0][0] + WINDOW - now
            raise _limited("tokens", f"Limit {policy.tpm}, Used {used}", wait)
        requests.append(now)

    def record_tokens(self, key_id: str, policy: KeyPolicy, tokens: int) -> None:
        if policy.tpm is not None and tokens > 0:
            self._tokens.setdefault(key_id, deque()).append((self.clock(), tokens))


def _limited(kind: str, detail: str, wait: float) -> RateLimited:
    seconds = max(1, math.ceil(wait))
    per = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
    return RateLimited(
        f"Rate limit reached for this API key on {per}: {detail}. Please try again in {seconds}s.",
        type=kind,
        headers={"retry-after": str(seconds), "x-should-retry": "true"},
    )
