"""Function calling for the embedded engine: tools described in the prompt, forced calls grammar-constrained.

With ``tool_choice`` ``required`` (or one named function) the model may only write
``{"name": <a declared function>, "arguments": <an object matching its parameters>}``; aicy turns that into a
tool call. With ``auto`` the model sees the tools but answers in text.
"""

from __future__ import annotations

import json
from typing import Any

from aicy.errors import InvalidRequest
from aicy.types import FunctionTool, GenerationRequest, Message

_OPEN_OBJECT: dict[str, Any] = {"type": "object"}


def forced_tools(request: GenerationRequest) -> list[FunctionTool]:
    """The functions the model must choose from, or [] when it may answer in text."""
    choice = request.tool_choice
    if not request.tools or choice is None or choice.mode in ("auto", "none"):
        return []
    if choice.mode == "function":
        named = [t for t in request.tools if t.name == choice.name]
        if not named:
            raise InvalidRequest(
                f"tool_choice names '{choice.name}', which is not among the tools.",
                param="tool_choice",
                code="invalid_value",
            )
        return named
    return list(request.tools)


def call_schema(tools: list[FunctionTool]) -> dict[str, Any]:
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.parameters or _OPEN_OBJECT},
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def describe_tools(messages: list[Message], request: GenerationRequest) -> list[Message]:
    """Put the declared tools into the system prompt (the GGUF template has no tools section)."""
    if not request.tools or (request.tool_choice is not None and request.tool_choice.mode == "none"):
        return messages
    lines = ['You can call these functions. To call one, reply with JSON {"name": ..., "arguments": {...}}.']
    for tool in request.tools:
        spec = {"name": tool.name, "description": tool.description or "", "parameters": tool.parameters or {}}
        lines.append(json.dumps(spec, ensure_ascii=False))
    note = "\n".join(lines)
    if messages and messages[0].role == "system":
        first = messages[0]
        return [Message(role="system", content=f"{first.content}\n\n{note}"), *messages[1:]]
    return [Message(role="system", content=note), *messages]


def parse_call(text: str) -> tuple[str, str]:
    """The (name, arguments JSON) of a grammar-constrained call."""
    call = json.loads(text)
    return str(call["name"]), json.dumps(call["arguments"], ensure_ascii=False)
