"""Responses API: request parsing, input items, and the event-sequence encoder (streamed or not)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from aicy.errors import InvalidRequest, UnsupportedValue
from aicy.protocol import ids
from aicy.protocol.chat import MAX_TOP_LOGPROBS, message_text
from aicy.protocol.custom_input import CustomInputStream, final_input
from aicy.protocol.response_tools import CUSTOM_INPUT, HOSTED_ITEM_TYPES, ToolSet, echoed, tool_set
from aicy.protocol.validation import parse_model, require
from aicy.types import (
    JSON,
    Event,
    Finish,
    FinishReason,
    GenerationRequest,
    Message,
    OutputFormat,
    ReasoningDelta,
    Role,
    TextDelta,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    TopLogprob,
    Usage,
)

LOGPROBS_INCLUDE = "message.output_text.logprobs"
_ROLE_MAP: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TextFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextConfig(_Open):
    format: TextFormat | None = None
    verbosity: str | None = None


class ReasoningConfig(_Open):
    effort: str | None = None
    summary: str | None = None


class ResponseTool(_Open):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ResponsesRequest(_Open):
    model: str
    input: str | list[Any]
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool | None = True
    stream: bool | None = False
    max_output_tokens: int | None = Field(None, ge=16)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    text: TextConfig | None = None
    metadata: dict[str, str] | None = None
    tools: list[ResponseTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningConfig | None = None
    truncation: str | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    include: list[str] | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    background: bool | None = None

    @property
    def wants_logprobs(self) -> bool:
        """Log-probabilities asked for: by ``include``, or by asking for the most likely tokens."""
        return LOGPROBS_INCLUDE in (self.include or ()) or bool(self.top_logprobs)

    @property
    def output_format(self) -> OutputFormat:
        fmt = self.text.format if self.text else None
        if fmt is None or fmt.type == "text":
            return OutputFormat()
        if fmt.type == "json_object":
            return OutputFormat(type="json_object")
        return OutputFormat(type="json_schema", name=fmt.name, schema=fmt.schema_ or {}, strict=fmt.strict)


def parse_request(body: Any) -> ResponsesRequest:
    request = parse_model(ResponsesRequest, body)
    if request.background:
        raise UnsupportedValue("Background responses are not supported yet.", param="background")
    fmt = request.text.format if request.text else None
    if fmt is not None and fmt.type == "json_schema":
        require(
            fmt.name is not None,
            "Missing required parameter: 'text.format.name'.",
            "text.format.name",
            "missing_required_parameter",
        )
        require(
            fmt.schema_ is not None,
            "Missing required parameter: 'text.format.schema'.",
            "text.format.schema",
            "missing_required_parameter",
        )
    _check_metadata(request.metadata)
    ids.check_client_id(request.previous_response_id, "previous_response_id")
    ids.check_client_id(request.prompt_cache_key, "prompt_cache_key")
    if isinstance(request.input, list):
        for i, item in enumerate(request.input):
            require(
                isinstance(item, dict),
                f"Invalid type for 'input[{i}]': expected an object.",
                f"input[{i}]",
                "invalid_type",
            )
            ids.check_client_id(item.get("id"), f"input[{i}].id")
            ids.check_client_id(item.get("call_id"), f"input[{i}].call_id")
    return request


def _check_metadata(metadata: dict[str, str] | None) -> None:
    if not metadata:
        return
    require(
        len(metadata) <= 16, "Metadata may have at most 16 keys.", "metadata", "object_above_max_properties"
    )
    for key, value in metadata.items():
        require(
            len(key) <= 64,
            "Metadata keys may be at most 64 characters.",
            "metadata",
            "string_above_max_length",
        )
        require(
            len(value) <= 512,
            "Metadata values may be at most 512 characters.",
            f"metadata.{key}",
            "string_above_max_length",
        )


def input_items(request: ResponsesRequest) -> list[JSON]:
    """The request's input as stored items, each with an id (as ``input_items`` lists them)."""
    if isinstance(request.input, str):
        return [_message_item("user", request.input)]
    items = []
    for i, raw in enumerate(request.input):
        items.append(_normalise_item(raw, f"input[{i}]"))
    return items


def _message_item(role: str, text: str) -> JSON:
    kind = "output_text" if role == "assistant" else "input_text"
    part: JSON = {"type": kind, "text": text}
    if kind == "output_text":
        part["annotations"] = []
    return {"id": ids.message_id(), "type": "message", "role": role, "content": [part], "status": "completed"}


def _normalise_item(raw: JSON, param: str) -> JSON:
    kind = raw.get("type", "message" if "role" in raw else None)
    if kind == "message":
        role = raw.get("role")
        require(
            role in ("user", "assistant", "system", "developer"),
            f"Invalid value for '{param}.role': expected user, assistant, system or developer.",
            f"{param}.role",
        )
        content = raw.get("content")
        if isinstance(content, str):
            item = _message_item(str(role), content)
            if raw.get("id"):
                item["id"] = raw["id"]
            return {**raw, **item} if "phase" in raw else item
        message_text(content, f"{param}.content")
        return {
            **raw,
            "type": "message",
            "id": raw.get("id") or ids.message_id(),
            "status": raw.get("status", "completed"),
        }
    if kind is None:
        raise InvalidRequest(
            f"Missing required parameter: '{param}.type'.",
            param=f"{param}.type",
            code="missing_required_parameter",
        )
    return {**raw, "id": raw.get("id") or ids.new_id(f"{str(kind)[:3]}_")}


def to_messages(items: list[JSON], param: str = "input", tools: ToolSet | None = None) -> list[Message]:
    """Neutral messages for Responses items.

    Function and custom tool calls become assistant tool calls (consecutive calls share one assistant
    turn), under the names the backend is offered (``tools``); a reasoning item's summary is attached to
    the assistant turn that follows it. Calls of hosted tools, which only the provider that ran them can
    read, are left out.
    """
    tools = tools or ToolSet()
    messages: list[Message] = []
    reasoning: str | None = None
    for i, item in enumerate(items):
        where = f"{param}[{i}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = _ROLE_MAP[str(item.get("role"))]
            text = message_text(item.get("content"), f"{where}.content")
            if role == "assistant":
                messages.append(Message(role=role, content=text, reasoning=reasoning))
                reasoning = None
            else:
                messages.append(Message(role=role, content=text))
        elif kind in ("function_call", "custom_tool_call"):
            call = _tool_call(item, tools)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and last.tool_calls and reasoning is None:
                messages[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(Message(role="assistant", tool_calls=(call,), reasoning=reasoning))
                reasoning = None
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            text = output if isinstance(output, str) else message_text(output, f"{where}.output")
            messages.append(Message(role="tool", content=text, tool_call_id=str(item.get("call_id"))))
        elif kind == "reasoning":
            summary = item.get("summary") or []
            text = "".join(str(p.get("text", "")) for p in summary if isinstance(p, dict))
            if text:
                reasoning = (reasoning or "") + text
        elif not isinstance(kind, str) or kind not in HOSTED_ITEM_TYPES:
            raise UnsupportedValue(f"Input item type '{kind}' is not supported.", param=f"{where}.type")
    return messages


def _tool_call(item: JSON, tools: ToolSet) -> ToolCall:
    """A replayed call as the backend was offered it: a custom tool's input wrapped as its one argument."""
    name, namespace = str(item.get("name")), item.get("namespace")
    call_id = str(item.get("call_id"))
    if item.get("type") == "custom_tool_call":
        raw_input = item.get("input")
        arguments = orjson.dumps({CUSTOM_INPUT: raw_input if isinstance(raw_input, str) else ""}).decode()
        return ToolCall(id=call_id, name=tools.offered_name(name, None, "custom"), arguments=arguments)
    space = namespace if isinstance(namespace, str) else None
    return ToolCall(
        id=call_id, name=tools.offered_name(name, space), arguments=str(item.get("arguments") or "")
    )


def request_tools(request: ResponsesRequest) -> ToolSet:
    return tool_set(request.tools or [])


def to_generation(request: ResponsesRequest, history: list[JSON], items: list[JSON]) -> GenerationRequest:
    tools = request_tools(request)
    choice = tool_choice(request.tool_choice, tools)  # checked even when no tool is left to choose
    messages = [Message(role="system", content=request.instructions)] if request.instructions else []
    messages += to_messages(history, "previous_response_id", tools)
    messages += to_messages(items, "input", tools)
    return GenerationRequest(
        model=request.model,
        messages=messages,
        max_output_tokens=request.max_output_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        output_format=request.output_format,
        tools=tuple(tools.functions),
        tool_choice=choice if tools.functions else None,
        omitted_tools=tuple(tools.omitted),
        reasoning_effort=request.reasoning.effort if request.reasoning else None,
        reasoning_summary=request.reasoning.summary if request.reasoning else None,
        parallel_tool_calls=request.parallel_tool_calls is not False,
        user=request.user,
        prompt_cache_key=request.prompt_cache_key,
        logprobs=request.wants_logprobs,
        top_logprobs=request.top_logprobs if request.wants_logprobs else None,
    )


def tool_choice(raw: str | dict[str, Any] | None, tools: ToolSet | None = None) -> ToolChoice | None:
    """Responses' ``tool_choice``: a mode string, ``{"type": "function" | "custom", "name": ...}`` (flat), or
    a hosted tool's type, which a backend that was not offered that tool reads as ``auto``."""
    tools = tools or ToolSet()
    if raw is None:
        return None
    if isinstance(raw, str):
        require(
            raw in ("auto", "none", "required"), f"Invalid value for 'tool_choice': '{raw}'.", "tool_choice"
        )
        return ToolChoice(mode=raw)  # type: ignore[arg-type]
    kind = raw.get("type")
    if kind in ("function", "custom") and isinstance(raw.get("name"), str):
        namespace = raw.get("namespace") if isinstance(raw.get("namespace"), str) else None
        return ToolChoice(mode="function", name=tools.offered_name(raw["name"], namespace, str(kind)))
    if kind == "allowed_tools" and raw.get("mode") in ("auto", "required"):
        return ToolChoice(mode=raw["mode"])
    if isinstance(kind, str) and kind in tools.omitted:
        return ToolChoice(mode="auto")
    raise UnsupportedValue(f"tool_choice of type '{raw.get('type')}' is not supported.", param="tool_choice")


def usage_json(usage: Usage) -> JSON:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def skeleton(
    request: ResponsesRequest,
    response_id: str,
    model: str,
    default_temperature: float = 1.0,
    default_top_p: float = 1.0,
) -> JSON:
    """The response object as ``response.created`` shows it, echoing the request's parameters."""
    text = request.text.model_dump(by_alias=True, exclude_none=True) if request.text else {}
    text.setdefault("format", {"type": "text"})
    text.setdefault("verbosity", "medium")
    reasoning = request.reasoning.model_dump(exclude_none=True) if request.reasoning else {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": None,
        "model": model,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "prompt_cache_key": request.prompt_cache_key,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": request.safety_identifier,
        "service_tier": "default",
        "store": request.store is not False,
        "temperature": request.temperature if request.temperature is not None else default_temperature,
        "text": text,
        "tool_choice": request.tool_choice if request.tool_choice is not None else "auto",
        "tools": [echoed(t.model_dump(by_alias=True, exclude_none=True)) for t in request.tools or []],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": request.top_p if request.top_p is not None else default_top_p,
        "truncation": request.truncation or "disabled",
        "usage": None,
        "user": request.user,
        "metadata": request.metadata or {},
    }


def _bytes(entry: TokenLogprob | TopLogprob) -> list[int]:
    raw = entry.token_bytes if entry.token_bytes is not None else entry.token.encode("utf-8")
    return list(raw)


def part_logprob_json(entry: TokenLogprob) -> JSON:
    """A token's entry in an ``output_text`` part's ``logprobs`` (with ``bytes``, which the part requires:
    the token's UTF-8 when the backend did not give them)."""
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": _bytes(entry),
        "top_logprobs": [
            {"token": top.token, "logprob": top.logprob, "bytes": _bytes(top)} for top in entry.top
        ],
    }


def event_logprob_json(entry: TokenLogprob) -> JSON:
    """A token's entry in ``response.output_text.delta``/``.done`` events (the spec's shape: no bytes)."""
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "top_logprobs": [{"token": top.token, "logprob": top.logprob} for top in entry.top],
    }


ItemKind = Literal["message", "reasoning", "function_call", "custom_tool_call"]


@dataclass
class _OpenItem:
    index: int
    item: JSON
    kind: ItemKind
    parts: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    custom: CustomInputStream | None = None  # a custom tool call's input, decoded as it streams

    @property
    def is_call(self) -> bool:
        return self.kind in ("function_call", "custom_tool_call")


class ResponsesEncoder:
    """Neutral events in, Responses stream events out; ``response`` holds the final object.

    ``tools`` maps the names a translated backend was offered back to the customer's tools (a namespace's
    function, a custom tool)."""

    def __init__(self, response: JSON, tools: ToolSet | None = None) -> None:
        self.response = response
        self.tools = tools or ToolSet()
        self.sequence = 0
        self.finish_reason: FinishReason | None = None
        self.usage = Usage()
        self._open: _OpenItem | None = None
        self._tool_items: dict[int, _OpenItem] = {}
        self._calls: list[_OpenItem] = []

    def _event(self, kind: str, **fields: Any) -> JSON:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def start(self) -> list[JSON]:
        snapshot = copy.deepcopy(self.response)
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def heartbeat(self) -> JSON:
        """A repeated ``response.in_progress``: a real event, so idle timers that ignore SSE comments
        (Codex's) are reset while a request waits to start."""
        return self._event("response.in_progress", response=copy.deepcopy(self.response))

    def next_sequence(self) -> int:
        """Take the next sequence number for an event made elsewhere (a relayed upstream's)."""
        number = self.sequence
        self.sequence += 1
        return number

    @property
    def output(self) -> list[JSON]:
        out: list[JSON] = self.response["output"]
        return out

    def _add_item(self, kind: ItemKind, item: JSON) -> list[JSON]:
        """Open an output item. Tool calls stay open side by side (their argument fragments may
        interleave) until text or reasoning starts or the reply ends; anything else closes what is open."""
        opened = _OpenItem(index=len(self.output), item=item, kind=kind)
        events = self._close() if opened.is_call else self._close_all()
        self.output.append(item)
        if kind == "custom_tool_call":
            opened.custom = CustomInputStream()
        if opened.is_call:
            self._calls.append(opened)
        else:
            self._open = opened
        events.append(self._event("response.output_item.added", output_index=opened.index, item=dict(item)))
        return events

    def _close_all(self) -> list[JSON]:
        events = self._close()
        calls, self._calls = self._calls, []
        for call in calls:
            events += self._close_item(call)
        return events

    def feed(self, event: Event) -> list[JSON]:
        if isinstance(event, TextDelta):
            return self._text(event.text, event.logprobs)
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event.text)
        if isinstance(event, ToolCallStart):
            events = self._call_item(event)
            self._tool_items[event.index] = self._calls[-1]
            return events
        if isinstance(event, ToolCallDelta):
            opened = self._tool_items[event.index]
            opened.parts.append(event.arguments)
            if opened.custom is not None:
                piece = opened.custom.feed(event.arguments)
                return [self._custom_delta(opened, piece)] if piece else []
            return [
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=opened.item["id"],
                    output_index=opened.index,
                    delta=event.arguments,
                )
            ]
        if isinstance(event, Finish):
            self.finish_reason = event.reason
            return self._close_all()
        self.usage = event
        return []

    def _call_item(self, event: ToolCallStart) -> list[JSON]:
        """A call as the customer declared the tool: a custom tool's call, or a function (with its
        namespace when it came from one)."""
        tool = self.tools.lookup(event.name)
        if tool.kind == "custom":
            item: JSON = {
                "id": ids.custom_tool_call_item_id(),
                "type": "custom_tool_call",
                "status": "in_progress",
                "call_id": event.id,
                "name": tool.name,
                "input": "",
            }
            return self._add_item("custom_tool_call", item)
        item = {
            "id": ids.function_call_item_id(),
            "type": "function_call",
            "status": "in_progress",
            "call_id": event.id,
            "name": tool.name,
            "arguments": "",
        }
        if tool.namespace is not None:
            item["namespace"] = tool.namespace
        return self._add_item("function_call", item)

    def _custom_delta(self, opened: _OpenItem, piece: str) -> JSON:
        return self._event(
            "response.custom_tool_call_input.delta",
            item_id=opened.item["id"],
            output_index=opened.index,
            delta=piece,
        )

    def _text(self, text: str, logprobs: tuple[TokenLogprob, ...] | None = None) -> list[JSON]:
        events: list[JSON] = []
        if self._open is None or self._open.kind != "message":
            item = {
                "id": ids.message_id(),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            events = self._add_item("message", item)
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=len(self.output) - 1,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                )
            )
        assert self._open is not None
        self._open.parts.append(text)
        if logprobs:
            self._open.logprobs += logprobs
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=self._open.item["id"],
                output_index=self._open.index,
                content_index=0,
                delta=text,
                logprobs=[event_logprob_json(e) for e in logprobs] if logprobs else [],
            )
        )
        return events

    def _reasoning(self, text: str) -> list[JSON]:
        events: list[JSON] = []
        if self._open is None or self._open.kind != "reasoning":
            item = {"id": ids.reasoning_id(), "type": "reasoning", "summary": []}
            events = self._add_item("reasoning", item)
            events.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    item_id=item["id"],
                    output_index=len(self.output) - 1,
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
            )
        assert self._open is not None
        self._open.parts.append(text)
        events.append(
            self._event(
                "response.reasoning_summary_text.delta",
                item_id=self._open.item["id"],
                output_index=self._open.index,
                summary_index=0,
                delta=text,
            )
        )
        return events

    def _close(self) -> list[JSON]:
        opened, self._open = self._open, None
        return [] if opened is None else self._close_item(opened)

    def _close_item(self, opened: _OpenItem) -> list[JSON]:
        item, index, full = opened.item, opened.index, "".join(opened.parts)
        where = {"item_id": item["id"], "output_index": index}
        events = []
        if opened.kind == "message":
            logprobs = [part_logprob_json(e) for e in opened.logprobs]
            part = {"type": "output_text", "text": full, "annotations": [], "logprobs": logprobs}
            done_logprobs = [event_logprob_json(e) for e in opened.logprobs]
            events.append(
                self._event(
                    "response.output_text.done", **where, content_index=0, text=full, logprobs=done_logprobs
                )
            )
            events.append(self._event("response.content_part.done", **where, content_index=0, part=part))
            item["content"] = [part]
            item["status"] = "incomplete" if self.finish_reason == "length" else "completed"
        elif opened.kind == "reasoning":
            part = {"type": "summary_text", "text": full}
            events.append(
                self._event("response.reasoning_summary_text.done", **where, summary_index=0, text=full)
            )
            events.append(
                self._event("response.reasoning_summary_part.done", **where, summary_index=0, part=part)
            )
            item["summary"] = [part]
            item["encrypted_content"] = None
        elif opened.custom is not None:
            rest = opened.custom.rest()
            if rest:
                events.append(self._custom_delta(opened, rest))
            item["input"] = final_input(full)
            item["status"] = "completed"
            events.append(self._event("response.custom_tool_call_input.done", **where, input=item["input"]))
        else:
            item["arguments"] = full
            item["status"] = "completed"
            events.append(
                self._event(
                    "response.function_call_arguments.done", **where, name=item["name"], arguments=full
                )
            )
        events.append(self._event("response.output_item.done", output_index=index, item=item))
        return events

    def finish(self) -> list[JSON]:
        """Close open items and emit the terminal event (completed, or incomplete on a length cut)."""
        events = self._close_all()
        response = self.response
        response["usage"] = usage_json(self.usage)
        if self.finish_reason == "length":
            response["status"] = "incomplete"
            response["incomplete_details"] = {"reason": "max_output_tokens"}
            events.append(self._event("response.incomplete", response=response))
        else:
            response["status"] = "completed"
            response["completed_at"] = int(time.time())
            events.append(self._event("response.completed", response=response))
        return events

    def fail(self, code: str, message: str) -> list[JSON]:
        events = self._close_all()
        self.response["status"] = "failed"
        self.response["error"] = {"code": code, "message": message}
        self.response["usage"] = usage_json(self.usage)
        events.append(self._event("response.failed", response=self.response))
        return events
