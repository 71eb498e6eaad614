"""The Responses API's tool types, for a backend that only knows function tools.

Codex CLI (and other agents) send more than ``function`` tools:

- ``namespace``: a named group of function tools. Flattened into its functions, each offered under its own
  name (``<namespace>__<name>`` when two would share a name); a call comes back as a ``function_call`` item
  with the inner ``name`` and the ``namespace``, as OpenAI answers it.
- ``custom``: a free-form tool whose call carries one string (``apply_patch``'s patch). Offered as a function
  with one string argument, ``input``; its calls come back as ``custom_tool_call`` items and its outputs
  (``custom_tool_call_output``) go back as tool results.
- anything else (``web_search``, ``image_generation``, ``mcp``, ``local_shell``, ``tool_search``, …) is
  a hosted tool that only the upstream provider runs. Relayed untouched to an upstream of the Responses API;
  left out for any other backend, and named in :attr:`ToolSet.omitted` so the reply can say so.

:class:`ToolSet` holds the mapping both ways: the function tools a backend is offered, and for each name a
backend may call, the item the customer must see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from aicy.errors import InvalidRequest
from aicy.protocol.validation import require
from aicy.types import FunctionTool

CUSTOM_INPUT = "input"
CUSTOM_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {CUSTOM_INPUT: {"type": "string", "description": "The tool's whole input, as free text."}},
    "required": [CUSTOM_INPUT],
    "additionalProperties": False,
}
TRANSLATED_TYPES = frozenset({"function", "namespace", "custom"})
NAMESPACE_SEPARATOR = "__"
_TYPE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# Output items of tools only an upstream provider runs: replayed history that a function-only backend
# cannot read. They are left out of a translated conversation (their results are the provider's, not ours).
HOSTED_ITEM_TYPES = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "image_generation_call",
        "code_interpreter_call",
        "computer_call",
        "computer_call_output",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "tool_search_call",
        "tool_search_output",
        "compaction",
        "item_reference",
    }
)


@dataclass(frozen=True, slots=True)
class CalledTool:
    """What the customer sees for a call of one offered function."""

    kind: Literal["function", "custom"]
    name: str
    namespace: str | None = None


@dataclass(slots=True)
class ToolSet:
    """The function tools a function-only backend is offered, and how its calls map back."""

    functions: list[FunctionTool] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
    called: dict[str, CalledTool] = field(default_factory=dict)  # offered name -> customer's tool

    def offered_name(self, name: str, namespace: str | None = None, kind: str = "function") -> str:
        """The name a backend knows a customer's tool by (a replayed call's name, a forced tool choice)."""
        for offered, tool in self.called.items():
            if tool.name == name and tool.namespace == namespace and (kind == "any" or tool.kind == kind):
                return offered
        return name if namespace is None else f"{namespace}{NAMESPACE_SEPARATOR}{name}"

    def lookup(self, offered: str) -> CalledTool:
        return self.called.get(offered) or CalledTool("function", offered)


@dataclass(frozen=True, slots=True)
class _Declared:
    kind: Literal["function", "custom"]
    name: str
    namespace: str | None
    description: str | None
    parameters: dict[str, Any] | None
    strict: bool | None


def tool_set(tools: list[Any]) -> ToolSet:
    """Read the request's ``tools`` (already parsed as objects with a ``type``)."""
    declared: list[_Declared] = []
    result = ToolSet()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        raw = tool.model_dump(by_alias=True) if hasattr(tool, "model_dump") else dict(tool)
        kind = raw.get("type")
        if kind == "namespace":
            declared += _namespace(raw, where)
        elif kind in ("function", "custom"):
            declared.append(_declared(raw, where, None))
        elif _shown_type(kind) not in result.omitted:
            result.omitted.append(_shown_type(kind))
    names = [d.name for d in declared]
    for item in declared:
        offered = item.name
        if item.namespace is not None and names.count(item.name) > 1:
            offered = f"{item.namespace}{NAMESPACE_SEPARATOR}{item.name}"
        require(
            offered not in result.called,
            f"Duplicate tool name: '{offered}'.",
            "tools",
            "duplicate_tool_name",
        )
        result.called[offered] = CalledTool(item.kind, item.name, item.namespace)
        if item.kind == "custom":
            result.functions.append(FunctionTool(offered, item.description, CUSTOM_PARAMETERS, None))
        else:
            result.functions.append(FunctionTool(offered, item.description, item.parameters, item.strict))
    return result


def _shown_type(kind: Any) -> str:
    """A left-out tool's type as a header and the usage log show it: OpenAI's types are short ASCII words;
    anything else (control characters, NUL, other scripts, a huge string) is shown as ``other``."""
    text = str(kind)
    return text if _TYPE_NAME.fullmatch(text) else "other"


def _namespace(raw: dict[str, Any], where: str) -> list[_Declared]:
    name = _name(raw, where)
    inner = raw.get("tools")
    require(
        isinstance(inner, list),
        f"Invalid type for '{where}.tools': expected an array of tools.",
        f"{where}.tools",
        "invalid_type",
    )
    out = []
    assert isinstance(inner, list)
    for j, tool in enumerate(inner):
        place = f"{where}.tools[{j}]"
        require(
            isinstance(tool, dict), f"Invalid type for '{place}': expected an object.", place, "invalid_type"
        )
        kind = tool.get("type", "function")
        if kind not in ("function", "custom"):
            raise InvalidRequest(
                f"Invalid value for '{place}.type': a namespace holds function or custom tools.",
                param=f"{place}.type",
                code="invalid_value",
            )
        out.append(_declared(tool, place, name))
    return out


def _declared(raw: dict[str, Any], where: str, namespace: str | None) -> _Declared:
    description = raw.get("description")
    parameters = raw.get("parameters")
    strict = raw.get("strict")
    require(
        description is None or isinstance(description, str),
        f"Invalid type for '{where}.description': expected a string.",
        f"{where}.description",
        "invalid_type",
    )
    require(
        parameters is None or isinstance(parameters, dict),
        f"Invalid type for '{where}.parameters': expected an object.",
        f"{where}.parameters",
        "invalid_type",
    )
    require(
        strict is None or isinstance(strict, bool),
        f"Invalid type for '{where}.strict': expected a boolean.",
        f"{where}.strict",
        "invalid_type",
    )
    kind: Literal["function", "custom"] = "custom" if raw.get("type") == "custom" else "function"
    return _Declared(kind, _name(raw, where), namespace, description, parameters, strict)


def _name(raw: dict[str, Any], where: str) -> str:
    name = raw.get("name")
    if name is None:
        raise InvalidRequest(
            f"Missing required parameter: '{where}.name'.",
            param=f"{where}.name",
            code="missing_required_parameter",
        )
    require(
        isinstance(name, str) and 0 < len(name) <= 128 and "\x00" not in name,
        f"Invalid value for '{where}.name': expected a non-empty string of at most 128 characters.",
        f"{where}.name",
    )
    return str(name)


def echoed(raw: dict[str, Any]) -> dict[str, Any]:
    """A tool as the Response object shows it: a function tool always carries ``description`` and
    ``strict`` (null when not given), as the API's schema requires."""
    if raw.get("type") != "function":
        return raw
    return {
        "type": "function",
        "name": raw.get("name"),
        "description": raw.get("description"),
        "parameters": raw.get("parameters"),
        "strict": raw.get("strict"),
        **{k: v for k, v in raw.items() if k not in ("type", "name", "description", "parameters", "strict")},
    }
