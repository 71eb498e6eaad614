"""Shared vocabulary: the neutral generation request and the neutral events every backend produces.

Serving translates the customer's API into a :class:`GenerationRequest`; a backend answers with a stream of
:data:`Event` values; ``aicy.protocol`` turns those events back into the customer's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]
Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
WireApi = Literal["chat", "responses"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One conversation turn in neutral form (system/developer are both ``system`` here).

    ``reasoning`` is an assistant turn's reasoning text (a replayed Responses reasoning item's summary, or a
    Chat upstream's ``reasoning_content``), kept so translation in either direction does not lose it.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    reasoning: str | None = None


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``auto``, ``none``, ``required``, or ``function`` with the one function that must be called."""

    mode: Literal["auto", "none", "required", "function"]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """Structured output: ``text``, ``json_object`` or ``json_schema`` (with ``schema``)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: JSON | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class FunctionTool:
    name: str
    description: str | None = None
    parameters: JSON | None = None
    strict: bool | None = None


@dataclass(slots=True)
class GenerationRequest:
    model: str
    messages: list[Message]
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    output_format: OutputFormat = field(default_factory=OutputFormat)
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice | None = None
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    parallel_tool_calls: bool = True
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    logprobs: bool = False  # report each output token's log-probability
    top_logprobs: int | None = None  # and this many of the most likely tokens at each position (0..20)
    omitted_tools: tuple[str, ...] = ()  # the customer's hosted tools (types) this request could not offer


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One of the most likely tokens at a position. ``token_bytes`` are the token's exact bytes (its ``token``
    text may show a token that is only part of a UTF-8 character as ``\\xNN`` escapes); None when the
    source did not give them."""

    token: str
    logprob: float
    token_bytes: bytes | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A generated token's log-probability (natural log, of the model's distribution before temperature),
    with the most likely tokens at its position, most likely first."""

    token: str
    logprob: float
    token_bytes: bytes | None = None
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Output text. ``logprobs``: the tokens that make it up, when the request asked for log-probabilities
    (None when they were not asked for, or the backend gave none)."""

    text: str
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason


Event = TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | Finish | Usage
