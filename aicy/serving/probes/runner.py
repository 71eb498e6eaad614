"""Running a suite through one channel: each case streamed, timed, and its usage read from the wire.

The request goes straight to the channel's backend (``Backend.relay``, as ``aicy channels test`` does), in
the channel's own API, so what is recorded is what the upstream said, not what aicy made of it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, fields
from typing import Any

from aicy.accounting import money
from aicy.accounting.tokens import (
    chat_input_tokens,
    count_text,
    known_encoding,
    responses_input_tokens,
)
from aicy.domain.channels import Channel
from aicy.domain.models import ModelInfo
from aicy.errors import AicyError
from aicy.serving.probes.suite import Case, Suite
from aicy.types import JSON, Usage
from aicy.upstream.base import Backend
from aicy.upstream.failures import UpstreamFailure


@dataclass(slots=True)
class Result:
    """One case's outcome. Token fields are None when the upstream did not report them; ``own_*`` are
    aicy's own counts with the claimed family's tokenizer (None when the family is unknown)."""

    prompt_id: str
    effort: str | None
    max_output_tokens: int
    limit_case: bool
    answer: str = ""
    reasoning: str = ""
    latency_ms: int = 0
    ttft_ms: int | None = None
    input_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    own_input_tokens: int | None = None
    own_output_tokens: int | None = None
    status: str = "completed"  # completed | incomplete | error
    reason: str | None = None  # why incomplete (length, max_output_tokens) or the error
    cost: int = 0

    def to_row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Target:
    """What a run asks: ``model`` as the catalog (or the customer) describes it, through ``channel``."""

    channel: Channel
    backend: Backend
    model: ModelInfo


def request_body(target: Target, suite: Suite, case: Case) -> JSON:
    """The case in the channel's API, streamed with usage; sampling fixed when the model allows it."""
    channel, model = target.channel, target.model
    upstream = channel.upstream_model(model.id)
    fixed: JSON = {}
    if not model.reasoning_efforts:
        if suite.temperature is not None:
            fixed["temperature"] = suite.temperature
        if suite.seed is not None and channel.wire_api == "chat":
            fixed["seed"] = suite.seed
    if channel.wire_api == "responses":
        body: JSON = {
            "model": upstream,
            "input": case.prompt.text,
            "max_output_tokens": case.prompt.max_output_tokens,
            "store": False,
            "stream": True,
            **fixed,
        }
        if case.effort:
            body["reasoning"] = {"effort": case.effort}
        return body
    body = {
        "model": upstream,
        "messages": [{"role": "user", "content": case.prompt.text}],
        channel.max_tokens_field: case.prompt.max_output_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **fixed,
    }
    if case.effort:
        body["reasoning_effort"] = case.effort
    return body


@dataclass(slots=True)
class _Reading:
    """What a stream has said so far."""

    result: Result
    started: float
    texts: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)

    def piece(self, text: Any, into: list[str]) -> None:
        if isinstance(text, str) and text:
            if self.result.ttft_ms is None:
                self.result.ttft_ms = round((time.perf_counter() - self.started) * 1000)
            into.append(text)

    def chat(self, payload: JSON) -> None:
        if isinstance(payload.get("usage"), dict):
            _usage(self.result, payload["usage"], "prompt_tokens", "completion_tokens")
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") or {}
            self.piece(delta.get("content"), self.texts)
            self.piece(delta.get("reasoning_content") or delta.get("reasoning"), self.thoughts)
            if choice.get("finish_reason") == "length":
                self.result.status, self.result.reason = "incomplete", "length"
        if "error" in payload:
            self.result.status, self.result.reason = "error", str(payload["error"])[:500]

    def responses(self, payload: JSON) -> None:
        kind = payload.get("type")
        if kind == "response.output_text.delta":
            self.piece(payload.get("delta"), self.texts)
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self.piece(payload.get("delta"), self.thoughts)
        elif kind in ("response.completed", "response.incomplete"):
            response = payload.get("response") or {}
            if isinstance(response.get("usage"), dict):
                _usage(self.result, response["usage"], "input_tokens", "output_tokens")
            if response.get("status") == "incomplete":
                details = response.get("incomplete_details") or {}
                self.result.status, self.result.reason = "incomplete", str(details.get("reason"))
        elif kind in ("error", "response.failed"):
            self.result.status, self.result.reason = "error", str(payload)[:500]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(result: Result, usage: JSON, input_field: str, output_field: str) -> None:
    """Chat (``prompt_tokens``…) or Responses (``input_tokens``…) usage, as reported."""
    result.input_tokens = _int(usage.get(input_field))
    result.output_tokens = _int(usage.get(output_field))
    in_details = usage.get(f"{input_field}_details") or usage.get("prompt_tokens_details") or {}
    out_details = usage.get(f"{output_field}_details") or usage.get("completion_tokens_details") or {}
    result.cached_tokens = _int(in_details.get("cached_tokens")) if isinstance(in_details, dict) else None
    result.reasoning_tokens = (
        _int(out_details.get("reasoning_tokens")) if isinstance(out_details, dict) else None
    )


def _own_counts(target: Target, body: JSON, result: Result) -> None:
    """aicy's count of the prompt sent and the text received, with the claimed family's tokenizer."""
    encoding = known_encoding(target.channel.upstream_model(target.model.id), target.model.id)
    if encoding is None:
        return
    counted = responses_input_tokens if target.channel.wire_api == "responses" else chat_input_tokens
    result.own_input_tokens = counted(body, encoding)
    result.own_output_tokens = count_text(result.answer, encoding)


async def run_case(target: Target, suite: Suite, case: Case) -> Result:
    body = request_body(target, suite, case)
    result = Result(case.prompt.id, case.effort, case.prompt.max_output_tokens, case.prompt.limit)
    reading = _Reading(result, time.perf_counter())
    read = reading.responses if target.channel.wire_api == "responses" else reading.chat
    try:
        reply = await target.backend.relay(body, streaming=True)
        try:
            async for batch in reply.batches():
                for payload in batch:
                    read(payload)
        finally:
            await reply.close()
    except (UpstreamFailure, AicyError) as exc:
        result.status = "error"
        result.reason = exc.reason if isinstance(exc, UpstreamFailure) else exc.message
    result.latency_ms = round((time.perf_counter() - reading.started) * 1000)
    result.answer, result.reasoning = "".join(reading.texts), "".join(reading.thoughts)
    await asyncio.to_thread(_own_counts, target, body, result)
    if result.input_tokens is not None and result.output_tokens is not None:
        usage = Usage(result.input_tokens, result.output_tokens, result.cached_tokens or 0)
        result.cost = money.cost(usage, target.model.prices)
    return result


async def run_suite(target: Target, suite: Suite) -> list[Result]:
    """Every case, one after another (a probe must not load the channel it measures)."""
    return [await run_case(target, suite, case) for case in suite.cases(target.model.reasoning_efforts)]
