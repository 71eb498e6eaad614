"""Talking to a Responses API upstream: the request body for a neutral request; its reply as events."""

from __future__ import annotations

from typing import Any

from aicy.errors import InvalidRequest, UpstreamError
from aicy.protocol import ids
from aicy.protocol.upstream_chat import parse_logprobs, upstream_error
from aicy.types import (
    JSON,
    Event,
    Finish,
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
    Usage,
)

_NOT_EXPRESSIBLE = ("seed", "stop", "presence_penalty", "frequency_penalty")
LOGPROBS_INCLUDE = "message.output_text.logprobs"


# request


def responses_request_body(req: GenerationRequest, upstream_model: str, *, stream: bool) -> JSON:
    """A stateless (``store: false``) Responses request for ``req``.

    Raises ``InvalidRequest`` for parameters the Responses API cannot express rather than dropping them.
    """
    _refuse_inexpressible(req)
    instructions, rest = _split_instructions(req.messages)
    body: JSON = {"model": upstream_model}
    if instructions is not None:
        body["instructions"] = instructions
    body["input"] = [item for m in rest for item in input_items(m)]
    if req.tools:
        body["tools"] = [_tool(t) for t in req.tools]
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.tool_choice is not None:
        body["tool_choice"] = _tool_choice(req.tool_choice)
    text_format = _text_format(req.output_format)
    if text_format is not None:
        body["text"] = {"format": text_format}
    reasoning = {"effort": req.reasoning_effort, "summary": req.reasoning_summary}
    if any(v is not None for v in reasoning.values()):
        body["reasoning"] = {k: v for k, v in reasoning.items() if v is not None}
    if req.logprobs:
        body["include"] = [LOGPROBS_INCLUDE]
        if req.top_logprobs is not None:
            body["top_logprobs"] = req.top_logprobs
    body.update(_set_fields(req))
    body["store"] = False
    body["stream"] = stream
    return body


def _refuse_inexpressible(req: GenerationRequest) -> None:
    for name in _NOT_EXPRESSIBLE:
        if getattr(req, name) not in (None, ()):
            raise InvalidRequest(
                f"Unsupported parameter: '{name}' is not supported with this model.",
                param=name,
                code="unsupported_parameter",
            )


def _set_fields(req: GenerationRequest) -> JSON:
    fields = {
        "max_output_tokens": req.max_output_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "user": req.user,
        "prompt_cache_key": req.prompt_cache_key,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _split_instructions(messages: list[Message]) -> tuple[str | None, list[Message]]:
    """Leading system messages become ``instructions``; later ones stay in place as developer messages."""
    count = 0
    while count < len(messages) and messages[count].role == "system":
        count += 1
    if count == 0:
        return None, messages
    return "\n\n".join(m.content for m in messages[:count]), messages[count:]


def input_items(message: Message) -> list[JSON]:
    """The Responses input items for one message; an assistant's ``reasoning`` is not replayed."""
    if message.role == "tool":
        return [{"type": "function_call_output", "call_id": message.tool_call_id, "output": message.content}]
    if message.role != "assistant":
        role = "developer" if message.role == "system" else "user"
        content = [{"type": "input_text", "text": message.content}]
        return [{"type": "message", "role": role, "content": content}]
    items: list[JSON] = []
    if message.content or not message.tool_calls:
        part = {"type": "output_text", "text": message.content, "annotations": []}
        items.append({"type": "message", "role": "assistant", "content": [part]})
    for call in message.tool_calls:
        items.append(
            {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments}
        )
    return items


def _tool(tool: FunctionTool) -> JSON:
    """A flat function tool. ``strict`` is always sent: unset means false in Chat but true in Responses."""
    out: JSON = {"type": "function", "name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    empty = {"type": "object", "properties": {}}  # what an omitted Chat ``parameters`` means
    out["parameters"] = tool.parameters if tool.parameters is not None else empty
    out["strict"] = bool(tool.strict)
    return out


def _tool_choice(choice: ToolChoice) -> str | JSON:
    if choice.mode == "function":
        return {"type": "function", "name": choice.name}
    return choice.mode


def _text_format(fmt: OutputFormat) -> JSON | None:
    if fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    out: JSON = {"type": "json_schema", "name": fmt.name or "response", "schema": fmt.schema or {}}
    if fmt.strict is not None:
        out["strict"] = fmt.strict
    return out


# reply


def responses_usage(raw: JSON) -> Usage:
    """Responses usage in neutral form (``input_tokens`` include the cached ones)."""
    input_details = raw.get("input_tokens_details") or {}
    output_details = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        cached_tokens=int(input_details.get("cached_tokens") or 0),
        reasoning_tokens=int(output_details.get("reasoning_tokens") or 0),
    )


def _error_event(event: JSON) -> UpstreamError:
    """An ``error`` event: the live API nests the error object, the spec puts its fields at the top."""
    nested = event.get("error")
    return upstream_error(nested if isinstance(nested, dict) else event)


def _terminal(response: JSON, saw_tool_calls: bool) -> list[Event]:
    """``Finish`` and ``Usage`` for a finished response object; a failed one raises."""
    status = response.get("status")
    if status == "failed" or response.get("error"):
        raise upstream_error(response.get("error") or {"message": "The upstream response failed."})
    if status == "incomplete":
        details = response.get("incomplete_details") or {}
        finish = Finish("content_filter" if details.get("reason") == "content_filter" else "length")
    else:
        finish = Finish("tool_calls" if saw_tool_calls else "stop")
    usage = response.get("usage")
    return [finish, responses_usage(usage)] if isinstance(usage, dict) else [finish]


class ResponsesStreamDecoder:
    """Responses stream events in, neutral events out; unknown event types are ignored.

    Function calls get our indexes 0, 1, 2… in the order their items are added.
    """

    def __init__(self) -> None:
        self._calls: dict[str, int] = {}  # item id, and "@<output_index>", -> our index
        self._call_count = 0
        self._arguments_sent: set[int] = set()
        self._reasoning_part: tuple[object, ...] | None = None
        self._finished = False

    def feed(self, event: JSON) -> list[Event]:
        events = self._dispatch(event)
        if any(not isinstance(e, ReasoningDelta) for e in events):
            self._reasoning_part = None
        return events

    def close(self) -> list[Event]:
        """A stream that ends without a terminal event was cut short: that is an upstream error."""
        if self._finished:
            return []
        raise UpstreamError("The upstream stream ended before response.completed.", code="server_error")

    def _dispatch(self, event: JSON) -> list[Event]:
        kind = event.get("type")
        if kind == "error":
            raise _error_event(event)
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            return self._finish(event.get("response") or {})
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return self._reasoning(event)
        if kind == "response.output_text.delta":
            scores = parse_logprobs(event.get("logprobs"))
            return [TextDelta(str(event.get("delta") or ""), scores)] if event.get("delta") or scores else []
        if kind == "response.refusal.delta":
            return [TextDelta(str(event["delta"]))] if event.get("delta") else []
        if kind == "response.function_call_arguments.delta":
            index = self._find(event.get("item_id"), event.get("output_index"))
            return self._arguments(index, event.get("delta"))
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return []
        if kind == "response.output_item.added":
            return self._call(item, event.get("output_index"))[1]
        if kind == "response.output_item.done":
            return self._call_done(item, event.get("output_index"))
        return []

    def _reasoning(self, event: JSON) -> list[Event]:
        """Reasoning text; a blank line goes between consecutive summary (or content) parts."""
        part = (
            event.get("type"),
            event.get("item_id"),
            event.get("summary_index", event.get("content_index")),
        )
        events: list[Event] = []
        if self._reasoning_part is not None and self._reasoning_part != part:
            events.append(ReasoningDelta("\n\n"))
        self._reasoning_part = part
        if event.get("delta"):
            events.append(ReasoningDelta(str(event["delta"])))
        return events

    def _find(self, item_id: Any, output_index: Any) -> int | None:
        keys = [str(item_id) if item_id else None, f"@{output_index}" if output_index is not None else None]
        return next((self._calls[k] for k in keys if k is not None and k in self._calls), None)

    def _call(self, item: JSON, output_index: Any) -> tuple[int, list[Event]]:
        """Our index for a function call item, starting the call the first time it is seen."""
        index = self._find(item.get("id"), output_index)
        if index is not None:
            return index, []
        index, self._call_count = self._call_count, self._call_count + 1
        if item.get("id"):
            self._calls[str(item["id"])] = index
        if output_index is not None:
            self._calls[f"@{output_index}"] = index
        call_id = str(item.get("call_id") or ids.call_id())
        return index, [ToolCallStart(index, call_id, str(item.get("name") or ""))]

    def _arguments(self, index: int | None, arguments: Any) -> list[Event]:
        if index is None or not arguments:
            return []
        self._arguments_sent.add(index)
        return [ToolCallDelta(index, str(arguments))]

    def _call_done(self, item: JSON, output_index: Any) -> list[Event]:
        """A finished call whose arguments no delta carried gets them here, whole."""
        index, events = self._call(item, output_index)
        if index in self._arguments_sent:
            return events
        return events + self._arguments(index, item.get("arguments"))

    def _finish(self, response: JSON) -> list[Event]:
        if self._finished:
            return []
        self._finished = True
        return _terminal(response, self._call_count > 0)


def response_events(body: JSON) -> list[Event]:
    """A non-streaming Response object as events, in output order."""
    if body.get("error") or body.get("status") == "failed":
        raise upstream_error(body.get("error") or {"message": "The upstream response failed."})
    events: list[Event] = []
    calls = 0
    for item in body.get("output") or []:
        kind = item.get("type")
        if kind == "reasoning":
            events += _reasoning_item(item)
        elif kind == "message":
            events += [TextDelta(t, scores) for t, scores in _message_texts(item) if t or scores]
        elif kind == "function_call":
            call_id = str(item.get("call_id") or ids.call_id())
            events.append(ToolCallStart(calls, call_id, str(item.get("name") or "")))
            if item.get("arguments"):
                events.append(ToolCallDelta(calls, str(item["arguments"])))
            calls += 1
    return events + _terminal(body, calls > 0)


def _reasoning_item(item: JSON) -> list[Event]:
    """Summary parts joined by blank lines (as the stream decoder does); raw reasoning text if no summary."""
    parts = item.get("summary") or item.get("content") or []
    text = "\n\n".join(str(p.get("text") or "") for p in parts if isinstance(p, dict))
    return [ReasoningDelta(text)] if text else []


def _message_texts(item: JSON) -> list[tuple[str, tuple[TokenLogprob, ...] | None]]:
    """Each text part with its tokens' log-probabilities (an ``output_text`` part's ``logprobs``)."""
    texts: list[tuple[str, tuple[TokenLogprob, ...] | None]] = []
    for part in item.get("content") or []:
        if part.get("type") == "output_text":
            texts.append((str(part.get("text") or ""), parse_logprobs(part.get("logprobs"))))
        elif part.get("type") == "refusal":
            texts.append((str(part.get("refusal") or ""), None))
    return texts
