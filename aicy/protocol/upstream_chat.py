"""Talking to a Chat Completions upstream: the request body for a neutral request; its reply as events."""

from __future__ import annotations

from typing import Any

import orjson

from aicy.errors import UpstreamError
from aicy.protocol import ids
from aicy.types import (
    JSON,
    Event,
    Finish,
    FinishReason,
    FunctionTool,
    GenerationRequest,
    Message,
    OutputFormat,
    ReasoningDelta,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    TopLogprob,
    Usage,
)

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


# request


def chat_request_body(
    req: GenerationRequest,
    upstream_model: str,
    *,
    stream: bool,
    max_tokens_field: str = "max_completion_tokens",
) -> JSON:
    """A Chat Completions request for ``req``; optional fields appear only when the customer set them."""
    body: JSON = {"model": upstream_model, "messages": [chat_message(m) for m in req.messages]}
    if req.tools:
        body["tools"] = [_tool(t) for t in req.tools]
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.tool_choice is not None:
        body["tool_choice"] = _tool_choice(req.tool_choice)
    response_format = _response_format(req.output_format)
    if response_format is not None:
        body["response_format"] = response_format
    if req.stop:
        body["stop"] = list(req.stop)
    if req.logprobs:
        body["logprobs"] = True
        if req.top_logprobs is not None:
            body["top_logprobs"] = req.top_logprobs
    body.update(_set_fields(req, max_tokens_field))
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}  # aicy bills from the usage chunk
    return body


def _set_fields(req: GenerationRequest, max_tokens_field: str) -> JSON:
    fields = {
        "reasoning_effort": req.reasoning_effort,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "seed": req.seed,
        "presence_penalty": req.presence_penalty,
        "frequency_penalty": req.frequency_penalty,
        "user": req.user,
        "prompt_cache_key": req.prompt_cache_key,
        max_tokens_field: req.max_output_tokens,
    }
    return {name: value for name, value in fields.items() if value is not None}


def chat_message(message: Message) -> JSON:
    """One Chat message; an assistant's ``reasoning`` is left out (Chat upstreams do not take it back).

    An assistant turn that only calls tools carries ``"content": ""``: OpenAI accepts it, while
    llama-cpp-python's server refuses ``null`` and its templates need the key to exist.
    """
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role != "assistant":
        return {"role": message.role, "content": message.content}
    if not message.tool_calls:
        return {"role": "assistant", "content": message.content}
    out: JSON = {"role": "assistant", "content": message.content}
    out["tool_calls"] = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in message.tool_calls
    ]
    return out


def _tool(tool: FunctionTool) -> JSON:
    function: JSON = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | JSON:
    if choice.mode == "function":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _response_format(fmt: OutputFormat) -> JSON | None:
    if fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    spec: JSON = {"name": fmt.name or "response", "schema": fmt.schema or {}}
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": spec}


# reply


def upstream_error(raw: Any) -> UpstreamError:
    """The upstream's ``error`` (an object, or a bare string) as an exception keeping its code and message."""
    if not isinstance(raw, dict):
        return UpstreamError(str(raw) if raw else "The upstream reported an error.")
    message = raw.get("message") or "The upstream reported an error."
    code, param = raw.get("code"), raw.get("param")
    return UpstreamError(
        str(message),
        code=str(code) if code is not None else None,
        param=str(param) if param is not None else None,
    )


def chat_usage(raw: JSON) -> Usage:
    """Chat usage in neutral form; ``prompt_tokens`` already include the cached tokens, and so does ours."""
    prompt = raw.get("prompt_tokens_details") or {}
    completion = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(prompt.get("cached_tokens") or 0),
        reasoning_tokens=int(completion.get("reasoning_tokens") or 0),
    )


def _logprob_number(raw: Any) -> float | None:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def _token_bytes(raw: Any) -> bytes | None:
    if isinstance(raw, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in raw
    ):
        return bytes(raw)
    return None


def _logprob_entry(raw: Any) -> TokenLogprob | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("token"), str):
        return None
    logprob = _logprob_number(raw.get("logprob"))
    if logprob is None:
        return None
    top = []
    for alt in raw.get("top_logprobs") or ():
        if isinstance(alt, dict) and isinstance(alt.get("token"), str):
            value = _logprob_number(alt.get("logprob"))
            if value is not None:
                top.append(TopLogprob(alt["token"], value, _token_bytes(alt.get("bytes"))))
    return TokenLogprob(raw["token"], logprob, _token_bytes(raw.get("bytes")), tuple(top))


def parse_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    """Token entries as both APIs write them (``token``, ``logprob``, ``bytes``, ``top_logprobs``; Responses
    events leave out ``bytes``); None when there are none (OpenAI's Responses deltas carry an empty list
    when nobody asked). Malformed entries are skipped."""
    if not isinstance(raw, list):
        return None
    return tuple(entry for entry in map(_logprob_entry, raw) if entry is not None) or None


def _finish_reason(raw: str, saw_tool_calls: bool) -> FinishReason:
    reason = _FINISH_REASONS.get(raw, "stop")
    return "tool_calls" if reason == "stop" and saw_tool_calls else reason


def _arguments(raw: Any) -> str:
    """Argument fragments are strings; a few servers send the whole arguments as an object."""
    if raw is None or isinstance(raw, str):
        return raw or ""
    return orjson.dumps(raw).decode()


class ChatStreamDecoder:
    """Chat Completions chunks in, neutral events out.

    Tool calls are renumbered 0, 1, 2… in order of first appearance. ``Finish`` is emitted once. Usage is
    emitted once: at OpenAI's usage-only chunk (``choices: []``), or else by ``close()`` from the last usage
    seen (some servers repeat a running usage on every chunk).
    """

    def __init__(self) -> None:
        self._tool_indexes: dict[int, int] = {}  # upstream index -> ours
        self._finished = False
        self._usage: Usage | None = None
        self._usage_sent = False

    def feed(self, chunk: JSON) -> list[Event]:
        if chunk.get("error"):
            raise upstream_error(chunk["error"])
        events: list[Event] = []
        choices = chunk.get("choices") or []
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events += self._choice(choice)
        if chunk.get("usage"):
            self._usage = chat_usage(chunk["usage"])
            if not choices:
                events += self._send_usage()
        return events

    def close(self) -> list[Event]:
        events: list[Event] = [] if self._finished else self._finish("stop")
        return events + self._send_usage()

    def _choice(self, choice: JSON) -> list[Event]:
        delta = choice.get("delta") or {}
        events: list[Event] = []
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            events.append(ReasoningDelta(reasoning))
        logprobs = choice.get("logprobs")
        for key in ("content", "refusal"):
            text = delta.get(key)
            scores = parse_logprobs(logprobs.get(key)) if isinstance(logprobs, dict) else None
            if isinstance(text, str) and (text or scores):
                events.append(TextDelta(text, scores))
        for position, call in enumerate(delta.get("tool_calls") or []):
            events += self._tool_call(position, call)
        reason = choice.get("finish_reason")
        if reason and not self._finished:
            events += self._finish(str(reason))
        return events

    def _tool_call(self, position: int, call: JSON) -> list[Event]:
        raw_index = call.get("index")
        upstream_index = raw_index if isinstance(raw_index, int) else position
        function = call.get("function") or {}
        events: list[Event] = []
        index = self._tool_indexes.get(upstream_index)
        if index is None:
            index = self._tool_indexes[upstream_index] = len(self._tool_indexes)
            name = str(function.get("name") or "")
            events.append(ToolCallStart(index, str(call.get("id") or ids.call_id()), name))
        arguments = _arguments(function.get("arguments"))
        if arguments:
            events.append(ToolCallDelta(index, arguments))
        return events

    def _finish(self, reason: str) -> list[Event]:
        self._finished = True
        return [Finish(_finish_reason(reason, bool(self._tool_indexes)))]

    def _send_usage(self) -> list[Event]:
        if self._usage is None or self._usage_sent:
            return []
        self._usage_sent = True
        return [self._usage]


def chat_completion_events(body: JSON) -> list[Event]:
    """A non-streaming Chat completion as the events its stream would have given."""
    if body.get("error"):
        raise upstream_error(body["error"])
    choice = (body.get("choices") or [{}])[0]
    message = dict(choice.get("message") or {})
    calls = message.get("tool_calls") or []
    message["tool_calls"] = [{**call, "index": i} for i, call in enumerate(calls)]
    delta = {
        "index": 0,
        "delta": message,
        "finish_reason": choice.get("finish_reason"),
        "logprobs": choice.get("logprobs"),
    }
    decoder = ChatStreamDecoder()
    return decoder.feed({"choices": [delta], "usage": body.get("usage")}) + decoder.close()
