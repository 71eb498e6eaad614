"""The embedded llama.cpp engine as a Backend: neutral request -> engine job -> neutral events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from aicy.domain.models import ModelInfo
from aicy.engine.llama import EngineJob, EngineResult, LlamaEngine, Sampling
from aicy.errors import InvalidRequest
from aicy.protocol import ids
from aicy.types import (
    JSON,
    Event,
    Finish,
    GenerationRequest,
    Message,
    OutputFormat,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    WireApi,
)
from aicy.upstream.embedded_tools import call_schema, describe_tools, forced_tools, parse_call


def _turn(message: Message) -> dict[str, Any]:
    content = message.content
    if message.tool_calls:
        calls = [{"name": c.name, "arguments": c.arguments} for c in message.tool_calls]
        content = (content + "\n" if content else "") + json.dumps(calls, ensure_ascii=False)
    return {"role": message.role, "content": content}


def grammar_for(fmt: OutputFormat) -> str | None:
    if fmt.type == "json_object":
        return JSON_GBNF
    if fmt.type == "json_schema":
        try:
            return str(json_schema_to_gbnf(json.dumps(fmt.schema or {})))
        except Exception as exc:
            raise InvalidRequest(
                f"Invalid JSON schema for structured output: {exc}",
                param="response_format",
                code="invalid_json_schema",
            ) from None
    return None


@dataclass(slots=True)
class EmbeddedCall:
    engine: LlamaEngine
    job: EngineJob
    input_tokens: int
    max_output_tokens: int
    tool_call: bool = False

    async def events(self) -> AsyncIterator[Event]:
        run = self.engine.run(self.job)
        text: list[str] = []
        try:
            async for item in run:
                if isinstance(item, EngineResult):
                    for event in self._closing(item, "".join(text)):
                        yield event
                elif self.tool_call:
                    text.append(item)
                else:
                    yield TextDelta(item)
        finally:
            await run.aclose()

    def usage_so_far(self) -> Usage:
        """The engine's own count of what was generated, for a call that ended early."""
        return Usage(
            input_tokens=len(self.job.prompt), output_tokens=self.job.produced, cached_tokens=self.job.cached
        )

    def _closing(self, result: EngineResult, text: str) -> list[Event]:
        usage = Usage(
            input_tokens=result.prompt_tokens,
            output_tokens=result.completion_tokens,
            cached_tokens=result.cached_tokens,
        )
        if not self.tool_call:
            return [Finish(result.finish), usage]
        if result.finish == "length":  # the call was cut off: show what there is, as text
            return [TextDelta(text), Finish("length"), usage]
        name, arguments = parse_call(text)
        return [
            ToolCallStart(0, ids.call_id(), name),
            ToolCallDelta(0, arguments),
            Finish("tool_calls"),
            usage,
        ]


class EmbeddedBackend:
    """The engine as a :class:`aicy.upstream.base.Backend`: it takes neutral requests only (no relaying)."""

    name = "embedded"
    wire_api: WireApi | None = None

    def __init__(self, engine: LlamaEngine) -> None:
        self.engine = engine

    def upstream_model(self, model: ModelInfo) -> str:
        return model.id

    async def relay(self, body: JSON, *, streaming: bool) -> NoReturn:
        raise TypeError("the embedded engine speaks no wire API: serving translates for it")

    async def probe(self) -> None:
        return None  # in process: it answers while the server runs

    async def prepare(self, request: GenerationRequest, model: ModelInfo) -> EmbeddedCall:
        forced = forced_tools(request)
        messages = describe_tools(request.messages, request)
        prompt = self.engine.tokenize_chat([_turn(m) for m in messages])
        room = model.context_window - len(prompt)
        if room <= 0:
            raise InvalidRequest(
                f"This model's maximum context length is {model.context_window} tokens. However, your "
                f"messages resulted in {len(prompt)} tokens. Please reduce the length of the messages.",
                code="context_length_exceeded",
            )
        limit = min(request.max_output_tokens or model.max_output_tokens, room)
        sampling = Sampling(
            max_tokens=limit,
            temperature=request.temperature if request.temperature is not None else model.default_temperature,
            top_p=request.top_p if request.top_p is not None else model.default_top_p,
            seed=request.seed,
            stop=request.stop,
            grammar=grammar_for(
                OutputFormat("json_schema", schema=call_schema(forced)) if forced else request.output_format
            ),
            presence_penalty=request.presence_penalty or 0.0,
            frequency_penalty=request.frequency_penalty or 0.0,
        )
        return EmbeddedCall(
            self.engine, EngineJob(prompt, sampling), len(prompt), limit, tool_call=bool(forced)
        )
