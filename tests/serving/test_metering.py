"""Metering when a backend reports no usage: what the tracker keeps, what it counts, and a settlement that
is written even when the request is cancelled while its usage is being counted."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aicy.accounting.ratelimit import RateLimiter
from aicy.accounting.tokens import Prompt, count_text
from aicy.domain.keys import Principal
from aicy.domain.models import ModelInfo, Prices
from aicy.serving.metering import Meter, UsageTracker
from aicy.types import ReasoningDelta, TextDelta, ToolCallDelta, ToolCallStart, Usage

PROMPT = Prompt(("gpt-4o",), api="chat", body={"messages": [{"role": "user", "content": "Hi"}]})
PROMPT_TOKENS = 3 + 3 + count_text("user") + count_text("Hi")


def n(text: str) -> int:
    return count_text(text, "o200k_base")


def tracker() -> UsageTracker:
    return UsageTracker(prompt=PROMPT)


def test_translated_events_are_counted_by_piece() -> None:
    t = tracker()
    for event in (
        ReasoningDelta("Let me"),
        ReasoningDelta(" think."),
        TextDelta("Hel"),
        TextDelta("lo there."),
        ToolCallStart(0, "call_1", "get_weather"),
        ToolCallDelta(0, '{"city":'),
        ToolCallDelta(0, '"Oslo"}'),
    ):
        t.event(event)
    reasoning = n("Let me think.")
    output = reasoning + n("Hello there.") + n("get_weather") + n('{"city":"Oslo"}')
    assert t.count() == Usage(PROMPT_TOKENS, output, 0, reasoning)
    assert t.outputs == 7


def test_chat_chunks_and_a_whole_chat_body() -> None:
    t = tracker()
    t.chat_chunk({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    t.chat_chunk({"choices": [{"index": 0, "delta": {"reasoning_content": "Hmm."}}]})
    for word in ("Hello", " from", " the", " upstream."):
        t.chat_chunk({"choices": [{"index": 0, "delta": {"content": word}}], "usage": None})
    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
    t.chat_chunk({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
    t.chat_chunk(
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]}
    )
    assert t.reported is None
    assert t.count() == Usage(
        PROMPT_TOKENS, n("Hmm.") + n("Hello from the upstream.") + n("f") + n("{}"), 0, n("Hmm.")
    )

    whole = tracker()
    message = {"role": "assistant", "content": "Hello from the upstream.", "reasoning_content": "Hmm."}
    whole.chat_chunk({"choices": [{"index": 0, "message": message}]})
    assert whole.count() == Usage(PROMPT_TOKENS, n("Hmm.") + n("Hello from the upstream."), 0, n("Hmm."))


def test_reported_usage_wins_and_is_not_estimated() -> None:
    t = tracker()
    t.chat_chunk({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
    assert t.reported == Usage(7, 2) and t.estimated is False


def test_responses_deltas_then_the_finished_output() -> None:
    t = tracker()
    t.responses_event(
        {"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning"}}
    )
    for piece in ("Think", "ing."):
        t.responses_event(
            {
                "type": "response.reasoning_summary_text.delta",
                "output_index": 0,
                "summary_index": 0,
                "delta": piece,
            }
        )
    for piece in ("Hello", " there."):
        t.responses_event(
            {"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": piece}
        )
    item = {"type": "function_call", "name": "get_weather", "arguments": ""}
    t.responses_event({"type": "response.output_item.added", "output_index": 2, "item": item})
    t.responses_event({"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{}"})
    t.responses_event({"type": "response.audio.delta", "output_index": 3, "delta": "UklGRg=="})  # not text
    cut = t.count()  # a stream cut before its terminal event: what the deltas said
    thought = n("Thinking.")
    assert cut == Usage(PROMPT_TOKENS, thought + n("Hello there.") + n("get_weather") + n("{}"), 0, thought)

    output = [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Thinking."}]},
        {"type": "message", "content": [{"type": "output_text", "text": "Hello there."}]},
        {"type": "function_call", "name": "get_weather", "arguments": "{}"},
    ]
    t.responses_event({"type": "response.completed", "response": {"output": output, "usage": None}})
    assert t.reported is None and t.count() == cut


def _meter(billing: Any) -> Meter:
    model = ModelInfo("m", 1000, 100, prices=Prices(1_000_000, 500_000, 2_000_000))
    meter = Meter(billing, RateLimiter(), Principal("k", "a", "customer"), model, "rsv", 100, "req", None)
    meter.opened = True
    meter.tracker.prompt = PROMPT
    return meter


class Billing:
    def __init__(self) -> None:
        self.settled: list[Any] = []

    async def settle(self, reservation_id: str, settlement: Any) -> None:
        self.settled.append(settlement)


def test_a_settlement_without_reported_usage_counts_and_marks_it_estimated() -> None:
    billing = Billing()
    meter = _meter(billing)
    meter.tracker.event(TextDelta("Hello there."))
    meter.delivered = True  # a stream that showed its output, then failed: charged for it
    asyncio.run(meter.settle("failed"))
    (settlement,) = billing.settled
    line = settlement.line
    assert (line["input_tokens"], line["output_tokens"], line["estimated"]) == (
        PROMPT_TOKENS,
        n("Hello there."),
        True,
    )
    assert settlement.cost == -(-(PROMPT_TOKENS * 1_000_000 + n("Hello there.") * 2_000_000) // 1_000_000)


def test_the_embedded_engines_own_count_comes_before_counting() -> None:
    class Partial:
        input_tokens = 0
        max_output_tokens = 0

        def usage_so_far(self) -> Usage:
            return Usage(11, 1)

    meter = _meter(Billing())
    meter.partial = Partial()  # type: ignore[assignment]
    assert meter.final_usage() == (Usage(11, 1), False)


def test_a_cancellation_while_counting_still_settles_then_is_raised() -> None:
    billing = Billing()
    meter = _meter(billing)
    meter.tracker.event(TextDelta("Hello there."))
    release = threading.Event()
    counting = threading.Event()

    class SlowPrompt:
        encoding = "o200k_base"

        def tokens(self) -> int:
            counting.set()
            release.wait(5)
            return PROMPT.tokens()

    meter.tracker.prompt = SlowPrompt()  # type: ignore[assignment]

    async def scenario() -> bool:
        task = asyncio.create_task(meter.settle("client_closed"))
        await asyncio.to_thread(counting.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still counting: the settlement is not abandoned
        release.set()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(scenario()) is True
    (settlement,) = billing.settled
    assert settlement.line["estimated"] is True and settlement.line["output_tokens"] == n("Hello there.")


def test_a_failure_whose_output_never_reached_the_customer_is_free() -> None:
    billing = Billing()
    meter = _meter(billing)
    meter.tracker.event(TextDelta("Hello there."))
    asyncio.run(meter.settle("failed"))
    (settlement,) = billing.settled
    assert settlement.cost == 0 and settlement.line["output_tokens"] == n("Hello there.")
