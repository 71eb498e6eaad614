"""Chat Completions: request parsing into the neutral request, and the stream/object encoder."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aicy.errors import InvalidRequest, UnsupportedValue
from aicy.protocol import ids
from aicy.protocol.validation import parse_model, require
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
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    Usage,
)

_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
MAX_TOP_LOGPROBS = 20


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class StreamOptions(_Open):
    include_usage: bool | None = False


class JsonSchemaSpec(_Open):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class ChatFunction(_Open):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatTool(_Open):
    type: str
    function: ChatFunction | None = None


class ChatCompletionRequest(_Open):
    model: str
    messages: list[Any] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=128)
    response_format: ResponseFormat | None = None
    tools: list[ChatTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    user: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def parse_request(body: Any) -> ChatCompletionRequest:
    request = parse_model(ChatCompletionRequest, body)
    if request.n not in (None, 1):
        raise UnsupportedValue("Only n=1 is supported.", param="n")
    if isinstance(request.stop, list):
        require(
            len(request.stop) <= 4, "At most 4 stop sequences are allowed.", "stop", "array_above_max_length"
        )
    if request.model_extra:
        ids.check_client_id(request.model_extra.get("prompt_cache_key"), "prompt_cache_key")
    require(
        not request.top_logprobs or request.logprobs is True,
        "Invalid value for 'top_logprobs': 'logprobs' must be true when 'top_logprobs' is set.",
        "top_logprobs",
    )
    if request.response_format and request.response_format.type == "json_schema":
        require(
            request.response_format.json_schema is not None,
            "Missing required parameter: 'response_format.json_schema'.",
            "response_format.json_schema",
            "missing_required_parameter",
        )
    return request


def to_generation(request: ChatCompletionRequest) -> GenerationRequest:
    stop = request.stop if isinstance(request.stop, list) else [request.stop] if request.stop else []
    return GenerationRequest(
        model=request.model,
        messages=[_message(m, f"messages[{i}]") for i, m in enumerate(request.messages)],
        max_output_tokens=request.max_completion_tokens or request.max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        stop=tuple(stop),
        output_format=_output_format(request.response_format),
        tools=tuple(_tool(t, f"tools[{i}]") for i, t in enumerate(request.tools or [])),
        tool_choice=tool_choice(request.tool_choice),
        reasoning_effort=request.reasoning_effort,
        parallel_tool_calls=request.parallel_tool_calls is not False,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        user=request.user,
        prompt_cache_key=request.model_extra.get("prompt_cache_key") if request.model_extra else None,
        logprobs=request.logprobs is True,
        top_logprobs=request.top_logprobs if request.logprobs else None,
    )


def tool_choice(raw: str | dict[str, Any] | None) -> ToolChoice | None:
    """Chat's ``tool_choice``: a mode string or ``{"type": "function", "function": {"name": ...}}``."""
    if raw is None:
        return None
    if isinstance(raw, str):
        require(
            raw in ("auto", "none", "required"), f"Invalid value for 'tool_choice': '{raw}'.", "tool_choice"
        )
        return ToolChoice(mode=raw)  # type: ignore[arg-type]
    function = raw.get("function")
    if raw.get("type") == "function" and isinstance(function, dict) and isinstance(function.get("name"), str):
        return ToolChoice(mode="function", name=function["name"])
    raise UnsupportedValue(f"tool_choice of type '{raw.get('type')}' is not supported.", param="tool_choice")


def _output_format(fmt: ResponseFormat | None) -> OutputFormat:
    if fmt is None or fmt.type == "text":
        return OutputFormat()
    if fmt.type == "json_object":
        return OutputFormat(type="json_object")
    spec = fmt.json_schema
    assert spec is not None
    return OutputFormat(type="json_schema", name=spec.name, schema=spec.schema_ or {}, strict=spec.strict)


def _tool(tool: ChatTool, param: str) -> FunctionTool:
    if tool.type != "function" or tool.function is None:
        raise UnsupportedValue(f"Tool type '{tool.type}' is not supported.", param=f"{param}.type")
    fn = tool.function
    return FunctionTool(name=fn.name, description=fn.description, parameters=fn.parameters, strict=fn.strict)


def _message(raw: Any, param: str) -> Message:
    if not isinstance(raw, dict):
        raise InvalidRequest(
            f"Invalid type for '{param}': expected an object.", param=param, code="invalid_type"
        )
    role = raw.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise InvalidRequest(
            f"Invalid value for '{param}.role': expected one of system, developer, user, assistant, tool.",
            param=f"{param}.role",
            code="invalid_value" if role is not None else "missing_required_parameter",
        )
    content = message_text(raw.get("content"), f"{param}.content")
    if role in ("system", "developer"):
        return Message(role="system", content=content)
    if role == "user":
        return Message(role="user", content=content)
    if role in ("tool", "function"):
        call = raw.get("tool_call_id") or raw.get("name")
        require(
            isinstance(call, str),
            "Missing required parameter: 'tool_call_id'.",
            f"{param}.tool_call_id",
            "missing_required_parameter",
        )
        return Message(role="tool", content=content, tool_call_id=call)
    reasoning = raw.get("reasoning_content") or raw.get("reasoning")
    return Message(
        role="assistant",
        content=content,
        tool_calls=_tool_calls(raw.get("tool_calls"), param),
        reasoning=reasoning if isinstance(reasoning, str) else None,
    )


def _tool_calls(raw: Any, param: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    require(isinstance(raw, list), "Invalid type: expected an array.", f"{param}.tool_calls", "invalid_type")
    calls = []
    for i, call in enumerate(raw):
        where = f"{param}.tool_calls[{i}]"
        fn = call.get("function") if isinstance(call, dict) else None
        require(isinstance(fn, dict) and isinstance(fn.get("name"), str), "Invalid tool call.", where)
        assert isinstance(call, dict) and isinstance(fn, dict)
        calls.append(
            ToolCall(
                id=str(call.get("id") or ids.call_id()),
                name=fn["name"],
                arguments=str(fn.get("arguments") or ""),
            )
        )
    return tuple(calls)


def message_text(content: Any, param: str) -> str:
    """Flatten string or text-part content; non-text parts are refused (the text engines cannot see them)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise InvalidRequest(
            f"Invalid type for '{param}': expected a string or an array of content parts.",
            param=param,
            code="invalid_type",
        )
    texts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        else:
            raise UnsupportedValue(
                f"Content part type '{kind}' is not supported by this model; send text parts.",
                param=f"{param}[{i}]",
            )
    return "".join(texts)


def usage_json(usage: Usage) -> JSON:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def logprob_json(entry: TokenLogprob) -> JSON:
    """A token's entry in ``choices[].logprobs.content`` (``bytes`` null when the backend gave none)."""
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": list(entry.token_bytes) if entry.token_bytes is not None else None,
        "top_logprobs": [
            {
                "token": top.token,
                "logprob": top.logprob,
                "bytes": list(top.token_bytes) if top.token_bytes is not None else None,
            }
            for top in entry.top
        ],
    }


class ChatEncoder:
    """Feeds neutral events in; gives chunks for a stream, or the whole completion at the end.

    With ``logprobs`` every content chunk's choice carries the entries of the tokens in it, and the
    completion's choice all of them; without, ``logprobs`` is null.
    """

    def __init__(self, model: str, include_usage: bool = False, logprobs: bool = False) -> None:
        self.id = ids.chat_completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.logprobs = logprobs
        self.logprob_content: list[JSON] = []
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.finish_reason: FinishReason | None = None
        self.usage = Usage()
        self._started = False

    def _chunk(self, delta: JSON, finish: str | None = None, logprobs: JSON | None = None) -> JSON:
        chunk: JSON = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def start(self) -> list[JSON]:
        self._started = True
        return [self._chunk({"role": "assistant", "content": "", "refusal": None})]

    def feed(self, event: Event) -> list[JSON]:
        out = [] if self._started else self.start()
        if isinstance(event, TextDelta):
            self.text.append(event.text)
            if self.logprobs:
                entries = [logprob_json(e) for e in event.logprobs or ()]
                self.logprob_content += entries
                logprobs = {"content": entries, "refusal": None}
                out.append(self._chunk({"content": event.text}, logprobs=logprobs))
            else:
                out.append(self._chunk({"content": event.text}))
        elif isinstance(event, ReasoningDelta):
            self.reasoning.append(event.text)
            out.append(self._chunk({"reasoning_content": event.text}))
        elif isinstance(event, ToolCallStart):
            self.tool_calls.append(
                {"id": event.id, "type": "function", "function": {"name": event.name, "arguments": ""}}
            )
            out.append(
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": event.index,
                                "id": event.id,
                                "type": "function",
                                "function": {"name": event.name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
        elif isinstance(event, ToolCallDelta):
            self.tool_calls[event.index]["function"]["arguments"] += event.arguments
            out.append(
                self._chunk(
                    {"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]}
                )
            )
        elif isinstance(event, Finish):
            self.finish_reason = event.reason
            out.append(self._chunk({}, event.reason))
        elif isinstance(event, Usage):
            self.usage = event
            if self.include_usage:
                out.append(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "system_fingerprint": None,
                        "choices": [],
                        "usage": usage_json(event),
                    }
                )
        return out

    def completion(self) -> JSON:
        message: JSON = {
            "role": "assistant",
            "content": "".join(self.text) if self.text or not self.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": {"content": self.logprob_content, "refusal": None} if self.logprobs else None,
                    "finish_reason": self.finish_reason or "stop",
                }
            ],
            "usage": usage_json(self.usage),
            "service_tier": "default",
            "system_fingerprint": None,
        }
