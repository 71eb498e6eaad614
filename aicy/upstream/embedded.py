"""The embedded llama.cpp engine as a Backend: neutral request -> engine job -> neutral events."""

from __future__ import annotations

import functools
import json
import re
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
    FunctionTool,
    GenerationRequest,
    Message,
    OutputFormat,
    TextDelta,
    TokenLogprob,
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


# What a JSON schema may ask of the grammar builder (llama-cpp-python's ``json_schema_to_gbnf``) and of
# llama.cpp. Every ``minItems``/``maxItems``/``minLength``/``maxLength`` and regex ``{m,n}`` becomes that many
# copies of a rule, and each optional copy one more nested group: llama.cpp refuses about 1,000 nested
# groups and overflows its stack (killing the process) at a few thousand, so the optional part is kept well
# below. The builder's cost grows with the square of an object's optional properties.
MAX_SCHEMA_COUNT = 10_000
MAX_SCHEMA_SPAN = 500
MAX_OPTIONAL_PROPERTIES = 100
MAX_SCHEMA_BYTES = 256 * 1024
MAX_GRAMMAR_ESTIMATE = 2_000_000  # bytes the repetitions may add to the grammar, estimated generously
_COUNTS = (("minItems", "maxItems"), ("minLength", "maxLength"))
_LITERALS = frozenset({"const", "enum", "default", "examples", "description", "title"})
_QUANTIFIER = re.compile(r"\{([^}]*)\}")
# An escape for U+0000 in a grammar (not an escaped backslash before it): llama.cpp aborts the process
# when such a character is sampled, so no grammar may contain one.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\(?:x00|u0000|U00000000)|\x00")


def check_output_format(fmt: OutputFormat, param: str = "response_format") -> None:
    """Refuse a structured-output format the embedded engine cannot turn into a grammar, with a 400 naming
    ``param`` (``response_format`` for Chat, ``text.format`` for Responses) and ``invalid_json_schema``.

    Pure and cheap (the grammar it builds is cached for ``prepare``): call it before anything is reserved or
    queued for a request the embedded engine will serve."""
    if fmt.type == "json_schema":
        schema_grammar(fmt.schema or {}, param)


def check_structured_output(request: GenerationRequest, api: WireApi) -> None:
    """Everything about ``request`` that the embedded engine turns into a grammar: the output format and,
    when ``tool_choice`` forces a call, the forced functions' parameters. Raises InvalidRequest."""
    chat = api == "chat"
    check_output_format(request.output_format, "response_format" if chat else "text.format")
    forced = forced_tools(request)
    for tool in forced:
        index = request.tools.index(tool)
        where = f"tools[{index}].function.parameters" if chat else f"tools[{index}].parameters"
        schema_grammar(call_schema([tool]), where)
    if len(forced) > 1:
        schema_grammar(call_schema(forced), "tools")


def grammar_for(fmt: OutputFormat, param: str = "response_format") -> str | None:
    if fmt.type == "json_object":
        return JSON_GBNF
    if fmt.type == "json_schema":
        return schema_grammar(fmt.schema or {}, param)
    return None


def schema_grammar(schema: Any, param: str) -> str:
    """The GBNF grammar for a JSON schema, or InvalidRequest (``invalid_json_schema``) naming ``param``."""
    text = json.dumps(schema)
    if len(text) > MAX_SCHEMA_BYTES:
        raise _bad_schema(
            f"it is {len(text)} characters long; the embedded model accepts schemas of at most "
            f"{MAX_SCHEMA_BYTES} characters",
            param,
        )
    check_schema_limits(schema, param)
    try:
        grammar = _convert(text)
    except Exception as exc:  # the builder reports bad schemas with all kinds of exceptions
        plain = isinstance(exc, ValueError | AssertionError) and str(exc)
        reason = str(exc) if plain else f"the grammar builder failed on it ({type(exc).__name__}: {exc})"
        raise _bad_schema(_shown(reason, 300), param) from None
    if _NUL_ESCAPE.search(grammar):
        raise _bad_schema("it asks for the character U+0000, which the embedded model cannot produce", param)
    return grammar


@functools.lru_cache(maxsize=64)
def _convert(text: str) -> str:
    return str(json_schema_to_gbnf(text))


def _bad_schema(reason: str, param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid JSON schema for structured output: {reason}.", param=param, code="invalid_json_schema"
    )


def check_schema_limits(schema: Any, param: str) -> None:
    """Bound what the grammar builder would be asked: counts, optional repetitions, optional properties and
    the grammar's size (estimated from each repetition's count and the length of its rule's name)."""
    estimate = 0
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            estimate += _node_cost(node, path, param)
            for key, value in node.items():
                if isinstance(value, dict | list) and key not in _LITERALS:
                    stack.append((value, f"{path}.{key}" if path else str(key)))
        elif isinstance(node, list):
            stack.extend(
                (value, f"{path}[{i}]") for i, value in enumerate(node) if isinstance(value, dict | list)
            )
        if estimate > MAX_GRAMMAR_ESTIMATE:
            raise _bad_schema(
                f"its repetitions (minItems, maxItems, minLength, maxLength, pattern quantifiers) would "
                f"make a grammar of more than {MAX_GRAMMAR_ESTIMATE} bytes for the embedded model",
                param,
            )


def _node_cost(node: dict[str, Any], path: str, param: str) -> int:
    where = f" at '{_shown(path)}'" if path else ""
    weight = len(path) + 16
    cost = 0
    for low_key, high_key in _COUNTS:
        low = _count(node, low_key, where, param)
        high = _count(node, high_key, where, param)
        if low is None and high is None:
            continue
        named = high_key if low is None else low_key if high is None else f"{low_key}/{high_key}"
        cost += _repetition(low or 0, high, f"'{named}'{where}", param) * weight
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        for group in _QUANTIFIER.finditer(pattern):
            bounds = _quantifier(group.group(1))
            if bounds is not None:
                repeats = _repetition(
                    *bounds, f"the quantifier {_shown(group.group(0))} of 'pattern'{where}", param
                )
                cost += repeats * (len(pattern) + weight)
    optional = _optional_properties(node)
    if optional > MAX_OPTIONAL_PROPERTIES:
        raise _bad_schema(
            f"an object{where} has {optional} optional properties; the embedded model supports at most "
            f"{MAX_OPTIONAL_PROPERTIES} (make more of them required)",
            param,
        )
    return cost


def _count(node: dict[str, Any], key: str, where: str, param: str) -> int | None:
    value = node.get(key)
    if value is None or isinstance(value, dict | list):  # absent, or a property named like the keyword
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SCHEMA_COUNT:
        raise _bad_schema(
            f"'{key}'{where} is {_shown(json.dumps(value))}; the embedded model supports whole numbers "
            f"from 0 to {MAX_SCHEMA_COUNT}",
            param,
        )
    return value


def _shown(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quantifier(text: str) -> tuple[int, int | None] | None:
    """A regex ``{m}``/``{m,n}``/``{m,}`` as the grammar builder reads it (``int()`` of each part)."""
    parts = [part.strip() for part in text.split(",")]
    try:
        if len(parts) == 1:
            return int(parts[0]), int(parts[0])
        if len(parts) == 2:
            return int(parts[0]) if parts[0] else 0, int(parts[1]) if parts[1] else None
    except ValueError:
        return None  # not a quantifier: the builder refuses it, or it is a literal brace
    return None


def _repetition(low: int, high: int | None, what: str, param: str) -> int:
    """How many copies of a rule the builder writes for ``low``..``high`` repetitions."""
    if low < 0 or low > MAX_SCHEMA_COUNT or (high is not None and not 0 <= high <= MAX_SCHEMA_COUNT):
        raise _bad_schema(
            f"{what} asks for {low}..{high} repetitions; the embedded model supports 0 to {MAX_SCHEMA_COUNT}",
            param,
        )
    if high is None:
        return low
    if high < low:
        raise _bad_schema(f"{what}: the maximum {high} is below the minimum {low}", param)
    if high - low > MAX_SCHEMA_SPAN:
        raise _bad_schema(
            f"{what} allows {low} to {high} repetitions; the embedded model supports at most "
            f"{MAX_SCHEMA_SPAN} optional ones (maximum minus minimum)",
            param,
        )
    return high


def _optional_properties(node: dict[str, Any]) -> int:
    """Properties the builder treats as optional: those not ``required``, plus additional properties; an
    ``allOf`` merges its parts' properties."""
    count = 0
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = node.get("required")
        names = {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
        count += sum(1 for name in properties if name not in names)
    extra = node.get("additionalProperties")
    if extra is True or isinstance(extra, dict):
        count += 1
    parts = node.get("allOf")
    if isinstance(parts, list):
        for part in parts:
            if isinstance(part, dict):
                alternatives = part.get("anyOf")
                for alt in alternatives if isinstance(alternatives, list) else [part]:
                    props = alt.get("properties") if isinstance(alt, dict) else None
                    count += len(props) if isinstance(props, dict) else 0
    return count


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
        scores: list[TokenLogprob] = []  # of a forced call's text, when log-probabilities were asked for
        try:
            async for item in run:
                if isinstance(item, EngineResult):
                    for event in self._closing(item, "".join(text), scores):
                        yield event
                elif isinstance(item, str):
                    if self.tool_call:
                        text.append(item)
                    else:
                        yield TextDelta(item)
                elif self.tool_call:
                    text.append(item.text)
                    scores.extend(item.logprobs)
                else:
                    yield TextDelta(item.text, item.logprobs)
        finally:
            await run.aclose()

    def usage_so_far(self) -> Usage:
        """The engine's own count of what was generated, for a call that ended early."""
        return Usage(
            input_tokens=len(self.job.prompt), output_tokens=self.job.produced, cached_tokens=self.job.cached
        )

    def _closing(self, result: EngineResult, text: str, scores: list[TokenLogprob]) -> list[Event]:
        usage = Usage(
            input_tokens=result.prompt_tokens,
            output_tokens=result.completion_tokens,
            cached_tokens=result.cached_tokens,
        )
        if not self.tool_call:
            return [Finish(result.finish), usage]
        if result.finish == "length":  # the call was cut off: show what there is, as text
            logprobs = tuple(scores) if self.job.sampling.logprobs is not None else None
            return [TextDelta(text, logprobs), Finish("length"), usage]
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

    def check(self, request: GenerationRequest, api: WireApi) -> None:
        check_structured_output(request, api)  # a schema that cannot become a grammar is refused up front

    def _grammar(self, request: GenerationRequest, forced: list[FunctionTool]) -> str | None:
        """The request's grammar, also parsed by llama.cpp here, so that one it refuses (say, a
        left-recursive ``$ref``) is the customer's 400 before the job is queued."""
        param = "tool_choice" if forced else "response_format"
        fmt = OutputFormat("json_schema", schema=call_schema(forced)) if forced else request.output_format
        grammar = grammar_for(fmt, param)
        if grammar is not None:
            try:
                self.engine.check_grammar(grammar)
            except ValueError:
                raise _bad_schema("llama.cpp could not parse the grammar built from it", param) from None
        return grammar

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
            grammar=self._grammar(request, forced),
            presence_penalty=request.presence_penalty or 0.0,
            frequency_penalty=request.frequency_penalty or 0.0,
            logprobs=(request.top_logprobs or 0) if request.logprobs else None,
        )
        return EmbeddedCall(
            self.engine, EngineJob(prompt, sampling), len(prompt), limit, tool_call=bool(forced)
        )
