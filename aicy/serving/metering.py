"""Metering: the reservation taken before a call, and its settlement, exactly once, however the call ends.

Billing rules (the customer guide's promise, applied here):
- a request that ends normally (``completed``/``incomplete``) is charged for its usage;
- a request that ends any other way (failed upstream, client gone, timeout) is charged for what the
  customer received of it: nothing if no output reached the customer (a non-stream that failed, a stream
  that failed before its first token), otherwise its input and the output produced;
- the usage is the backend's own report when there is one (for an interrupted call of the embedded engine,
  its own count); otherwise aicy counts the tokens itself (:mod:`aicy.accounting.tokens`), shows that count
  in the reply, and the usage log marks it as estimated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aicy.accounting.money import cost
from aicy.accounting.ratelimit import RateLimiter
from aicy.accounting.tokens import DEFAULT_ENCODING, Prompt, output_tokens
from aicy.domain.keys import Principal
from aicy.domain.models import ModelInfo
from aicy.protocol.upstream_chat import chat_usage
from aicy.protocol.upstream_responses import responses_usage
from aicy.storage.billing import BillingStore, Settlement
from aicy.types import Event, ReasoningDelta, TextDelta, ToolCallDelta, ToolCallStart, Usage
from aicy.upstream.base import PreparedCall

log = logging.getLogger("aicy.metering")
BILLED_STATUSES = frozenset({"completed", "incomplete"})
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
# One piece of output, counted whole: (kind, output index, part index). The kind is ``text``,
# ``reasoning``, ``name`` or ``arguments`` (a tool call's), or a Responses delta's event type.
Piece = tuple[str, int, int]


def _is_reasoning(kind: str) -> bool:
    return "reasoning" in kind or kind == "summary"


def _index(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _add(produced: dict[Piece, list[str]], piece: Piece, text: Any) -> None:
    if isinstance(text, str) and text:
        produced.setdefault(piece, []).append(text)


def _chat_output(produced: dict[Piece, list[str]], delta: dict[str, Any]) -> None:
    """A Chat delta's output (or a whole message's), by piece."""
    _add(produced, ("text", 0, 0), delta.get("content"))
    _add(produced, ("text", 0, 0), delta.get("refusal"))
    _add(produced, ("reasoning", 0, 0), delta.get("reasoning_content") or delta.get("reasoning"))
    calls = delta.get("tool_calls")
    if not isinstance(calls, list):
        return
    for position, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            index = call.get("index", position)
            _add(produced, ("name", _index(index), 0), function.get("name"))
            _add(produced, ("arguments", _index(index), 0), function.get("arguments"))


def _responses_output(items: list[Any]) -> dict[Piece, list[str]]:
    """A finished Responses ``output``, by piece: message text, reasoning, tool calls."""
    produced: dict[Piece, list[str]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        for key in ("name", "arguments", "input", "code"):
            _add(produced, (key, index, 0), item.get(key))
        reasoning = item.get("type") == "reasoning"
        for key in ("content", "summary"):
            parts = item.get(key)
            kind = "reasoning" if reasoning else "text"
            for part_index, part in enumerate(parts if isinstance(parts, list) else ()):
                if isinstance(part, dict):
                    text = part.get("text") or part.get("refusal")
                    _add(produced, (kind if key == "content" else "summary", index, part_index), text)
    return produced


@dataclass(slots=True)
class UsageTracker:
    """Watches what a reply produced: the usage the backend reported, output seen so far, and the pieces of
    that output, which aicy counts itself when the backend reports no usage.

    Keeping the pieces costs a list append per delta; they are tokenised (:meth:`count`) only when no usage
    came. ``prompt`` is what the call sent, set when a backend takes the call."""

    reported: Usage | None = None
    estimated: bool = False  # ``reported`` is aicy's own count: the backend reported none
    outputs: int = 0
    first_output_at: float | None = None
    prompt: Prompt | None = None
    produced: dict[Piece, list[str]] = field(default_factory=dict)

    def output(self) -> None:
        self.outputs += 1
        if self.first_output_at is None:
            self.first_output_at = time.monotonic()

    def event(self, event: Event) -> None:
        if isinstance(event, Usage):
            self.reported = event
            return
        if isinstance(event, TextDelta):
            _add(self.produced, ("text", 0, 0), event.text)
        elif isinstance(event, ReasoningDelta):
            _add(self.produced, ("reasoning", 0, 0), event.text)
        elif isinstance(event, ToolCallStart):
            _add(self.produced, ("name", event.index, 0), event.name)
        elif isinstance(event, ToolCallDelta):
            _add(self.produced, ("arguments", event.index, 0), event.arguments)
        else:
            return
        self.output()

    def chat_chunk(self, chunk: dict[str, Any]) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.reported = chat_usage(usage)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or choice.get("message") or {}
            if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
                self.output()
            _chat_output(self.produced, delta)

    def responses_event(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if kind.endswith(".delta"):
            self.output()
            if "audio" not in kind:
                part = _index(event.get("content_index", event.get("summary_index")))
                _add(self.produced, (kind, _index(event.get("output_index")), part), event.get("delta"))
        elif kind == "response.output_item.added":
            item = event.get("item")
            if isinstance(item, dict):
                _add(self.produced, ("name", _index(event.get("output_index")), 0), item.get("name"))
        elif kind in TERMINAL_EVENTS:
            response = event.get("response")
            if isinstance(response, dict):
                self.response(response)

    def response(self, response: dict[str, Any]) -> None:
        usage = response.get("usage")
        output = response.get("output")
        if isinstance(usage, dict):
            self.reported = responses_usage(usage)
        elif isinstance(output, list) and output:
            self.produced = _responses_output(output)  # the finished output is what was produced
        if output:
            self.output()

    def count(self) -> Usage:
        """aicy's own count of the prompt and of the output seen (CPU work: run it in a thread)."""
        prompt = self.prompt
        encoding = prompt.encoding if prompt is not None else DEFAULT_ENCODING
        pieces = [(_is_reasoning(piece[0]), "".join(parts)) for piece, parts in self.produced.items()]
        reasoning = output_tokens([text for thinking, text in pieces if thinking], encoding)
        answer = output_tokens([text for thinking, text in pieces if not thinking], encoding)
        return Usage(
            input_tokens=prompt.tokens() if prompt is not None else 0,
            output_tokens=answer + reasoning,
            reasoning_tokens=reasoning,
        )

    async def counted(self) -> Usage:
        """Count what the backend did not report (in a thread); it becomes this reply's usage, estimated."""
        usage = await asyncio.to_thread(self.count)
        self.reported, self.estimated = usage, True
        return usage


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
    omitted_tools: tuple[str, ...] = ()  # hosted tools the backend was not offered (it cannot run them)
    tracker: UsageTracker = field(default_factory=UsageTracker)
    partial: PreparedCall | None = None  # a translated call, which may count what it produced itself
    delivered: bool = False  # output reached the customer (a failure after it is charged for it, else free)
    opened: bool = False  # a backend took the call (before that, nothing can be owed)

    def final_usage(self) -> tuple[Usage, bool] | None:
        """(usage, estimated), or None when aicy must count it (the backend reported none and has no count
        of its own). A call that never reached a backend produced nothing."""
        tracker = self.tracker
        if tracker.reported is not None:
            return tracker.reported, tracker.estimated
        own = self.partial.usage_so_far() if self.partial is not None else None
        if own is not None:
            return own, False
        if not self.opened:
            return Usage(), False
        if tracker.prompt is None:  # every call a backend took has its prompt; a rough guess otherwise
            return Usage(input_tokens=self.input_estimate, output_tokens=tracker.outputs), True
        return None

    async def settle(self, status: str) -> None:
        """Charge what ``status`` and the usage say is owed, and write the usage line, in one transaction.

        A request that ended normally pays its usage; any other pays for what it produced only when some
        of that output reached the customer (a stream cut off mid-way; a non-stream that failed is free).
        A failed settlement leaves the reservation open (released at the next start of this node) and is
        logged. A cancellation that arrives while the usage is being counted is raised after the
        settlement."""
        final = self.final_usage()
        interrupted: asyncio.CancelledError | None = None
        if final is None:
            final, interrupted = await self._count_to_the_end()
        usage, estimated = final
        produced = usage.output_tokens > 0 or self.tracker.outputs > 0
        owed = (
            cost(usage, self.model.prices)
            if status in BILLED_STATUSES or (self.delivered and produced)
            else 0
        )
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
        if interrupted is not None:
            raise interrupted

    async def _count_to_the_end(self) -> tuple[tuple[Usage, bool], asyncio.CancelledError | None]:
        """The tracker's count (in a thread, so a large prompt does not stall other requests), awaited to
        its end even if the caller is cancelled meanwhile; that cancellation is handed back."""
        counting = asyncio.ensure_future(asyncio.to_thread(self.tracker.count))
        interrupted: asyncio.CancelledError | None = None
        while True:
            try:
                return (await asyncio.shield(counting), True), interrupted
            except asyncio.CancelledError as exc:
                interrupted = exc
            except Exception:
                log.exception("counting the usage of %s failed; estimating it", self.request_id)
                guessed = Usage(input_tokens=self.input_estimate, output_tokens=self.tracker.outputs)
                return (guessed, True), interrupted

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
            "omitted_tools": ",".join(self.omitted_tools)[:500] or None,
        }
