"""Metering: the reservation taken before a call, and its settlement, exactly once, however the call ends.

Billing rules (the customer guide's promise, applied here):
- a request that ends normally (``completed``/``incomplete``) is charged for its usage;
- a request that ends any other way (failed upstream, client gone, timeout) is charged for what it
  produced: nothing if it produced no output, otherwise its input and the output produced;
- the usage is the backend's own report when there is one; otherwise the embedded engine's count, or for
  upstreams an estimate that the usage log marks as estimated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aicy.accounting.money import cost
from aicy.accounting.ratelimit import RateLimiter
from aicy.domain.keys import Principal
from aicy.domain.models import ModelInfo
from aicy.protocol.upstream_chat import chat_usage
from aicy.protocol.upstream_responses import responses_usage
from aicy.storage.billing import BillingStore, Settlement
from aicy.types import Event, ReasoningDelta, TextDelta, ToolCallDelta, ToolCallStart, Usage

log = logging.getLogger("aicy.metering")
BILLED_STATUSES = frozenset({"completed", "incomplete"})


@runtime_checkable
class PartialUsage(Protocol):
    def usage_so_far(self) -> Usage: ...


@dataclass(slots=True)
class UsageTracker:
    """Watches what a reply produced: the usage the backend reported, and output seen so far."""

    reported: Usage | None = None
    outputs: int = 0
    first_output_at: float | None = None

    def output(self) -> None:
        self.outputs += 1
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()

    def event(self, event: Event) -> None:
        if isinstance(event, Usage):
            self.reported = event
        elif isinstance(event, TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta):
            self.output()

    def chat_chunk(self, chunk: dict[str, Any]) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.reported = chat_usage(usage)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or choice.get("message") or {}
            if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
                self.output()

    def responses_event(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if kind.endswith(".delta"):
            self.output()
        response = event.get("response")
        if kind in ("response.completed", "response.incomplete", "response.failed") and isinstance(
            response, dict
        ):
            self.response(response)

    def response(self, response: dict[str, Any]) -> None:
        usage = response.get("usage")
        if isinstance(usage, dict):
            self.reported = responses_usage(usage)
        if response.get("output"):
            self.output()


@dataclass(slots=True)
class Meter:
    billing: BillingStore
    limiter: RateLimiter
    principal: Principal
    model: ModelInfo
    reservation_id: str
    input_estimate: int
    request_id: str | None
    client_ip: str | None
    started: float = field(default_factory=time.monotonic)
    queue_ms: int = 0
    channel: str | None = None
    upstream_model: str | None = None
    tracker: UsageTracker = field(default_factory=UsageTracker)
    partial: PartialUsage | None = None
    settled: bool = False
    on_settled: Callable[[], None] | None = None

    def _done(self) -> None:
        """Give back the backend slot (admission) as soon as the call is over."""
        hook, self.on_settled = self.on_settled, None
        if hook is not None:
            hook()

    def final_usage(self) -> tuple[Usage, bool]:
        """(usage, estimated)."""
        if self.tracker.reported is not None:
            return self.tracker.reported, False
        if self.partial is not None:
            return self.partial.usage_so_far(), False
        guessed = Usage(input_tokens=self.input_estimate, output_tokens=self.tracker.outputs)
        return guessed, True

    async def settle(self, status: str) -> None:
        """Charge and log once, also when the request is being cancelled (the store finishes a settlement it
        started; on SQLite it runs on the loop at once, with no task of its own)."""
        if self.settled:
            return
        self.settled = True
        self._done()
        usage, estimated = self.final_usage()
        produced = usage.output_tokens > 0 or self.tracker.outputs > 0
        owed = cost(usage, self.model.prices) if status in BILLED_STATUSES or produced else 0
        # Counted before the settlement, which may wait: the client may already be sending its next request.
        self.limiter.record_tokens(self.principal.key_id, self.principal.policy, usage.total_tokens)
        await self._settle(Settlement(owed, self._line(usage, estimated, status)))

    async def _settle(self, settlement: Settlement) -> None:
        try:
            await self.billing.settle(self.reservation_id, settlement)
        except Exception:
            # The reservation row stays open; recovery at the next start releases it.
            log.exception("settling %s failed", self.reservation_id)

    def _line(self, usage: Usage, estimated: bool, status: str) -> dict[str, Any]:
        now = time.monotonic()
        first = self.tracker.first_output_at
        return {
            "created_at": int(time.time() * 1000),
            "request_id": self.request_id,
            "account_id": self.principal.account_id,
            "key_id": self.principal.key_id,
            "model": self.model.id,
            "channel": self.channel,
            "upstream_model": self.upstream_model,
            "input_tokens": usage.input_tokens,
            "cached_tokens": usage.cached_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "latency_ms": int((now - self.started) * 1000),
            "ttft_ms": int((first - self.started) * 1000) if first else None,
            "queue_ms": self.queue_ms,
            "status": status,
            "client_ip": self.client_ip,
            "estimated": estimated,
        }

    async def release(self, status: str = "failed") -> None:
        """The call never started (every backend refused it): no charge, but a usage line all the same."""
        if self.settled:
            return
        self.settled = True
        self._done()
        line = self._line(Usage(), estimated=False, status=status)
        await self.billing.settle(self.reservation_id, Settlement(0, line))
