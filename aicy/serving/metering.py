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
from dataclasses import dataclass, field
from typing import Any

from aicy.accounting.money import cost
from aicy.accounting.ratelimit import RateLimiter
from aicy.domain.keys import Principal
from aicy.domain.models import ModelInfo
from aicy.protocol.upstream_chat import chat_usage
from aicy.protocol.upstream_responses import responses_usage
from aicy.storage.billing import BillingStore, Settlement
from aicy.types import Event, ReasoningDelta, TextDelta, ToolCallDelta, ToolCallStart, Usage
from aicy.upstream.base import PreparedCall

log = logging.getLogger("aicy.metering")
BILLED_STATUSES = frozenset({"completed", "incomplete"})


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
    """A reservation's numbers for its settlement: what the call produced and how long it took.

    It is settled by :class:`aicy.serving.generation.Generation`, once, from the ``finally`` that ends the
    generation; nothing here guards against a second call.
    """

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
    partial: PreparedCall | None = None  # a translated call, which may count what it produced itself
    opened: bool = False  # a backend took the call (before that, nothing can be owed)

    def final_usage(self) -> tuple[Usage, bool]:
        """(usage, estimated). A call that never reached a backend produced nothing."""
        if self.tracker.reported is not None:
            return self.tracker.reported, False
        own = self.partial.usage_so_far() if self.partial is not None else None
        if own is not None:
            return own, False
        if not self.opened:
            return Usage(), False
        guessed = Usage(input_tokens=self.input_estimate, output_tokens=self.tracker.outputs)
        return guessed, True

    async def settle(self, status: str) -> None:
        """Charge what ``status`` and the usage say is owed, and write the usage line, in one transaction.

        A request that ended normally pays its usage; any other pays only if it produced output. A failed
        settlement leaves the reservation open (released at the next start of this node) and is logged."""
        usage, estimated = self.final_usage()
        produced = usage.output_tokens > 0 or self.tracker.outputs > 0
        owed = cost(usage, self.model.prices) if status in BILLED_STATUSES or produced else 0
        # Counted before the settlement, which may wait: the client may already be sending its next request.
        self.limiter.record_tokens(self.principal.key_id, self.principal.policy, usage.total_tokens)
        try:
            await self.billing.settle(
                self.reservation_id, Settlement(owed, self._line(usage, estimated, status))
            )
        except Exception:
            log.exception(
                "settling %s failed; the reservation stays open until recovery", self.reservation_id
            )

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
