"""Counting tokens offline, for an upstream that reports no usage: what the customer is shown and billed.

The tokenizer is the model family's BPE encoding, shipped inside the ``quicktok-v1`` package (nothing is
downloaded at run time; its counts are those of OpenAI's ``tiktoken``): ``cl100k_base`` for GPT-4 (Turbo)
and GPT-3.5, ``o200k_base`` for GPT-4o, GPT-4.1, GPT-4.5, GPT-5, the o-series, gpt-oss and, by default, every
other model. The family is read from the upstream's model name, else from aicy's model id.

The counting rule, OpenAI's chat format for these families (its token-counting guide):

- **input**: every message (a Chat message, a Responses input item, the ``instructions``) costs
  ``PER_MESSAGE`` (3) tokens plus the tokens of its texts: role, name (and ``PER_NAME``, 1, for a
  participant's name), text content or text parts, a tool call's name and arguments, a tool's output (a
  reasoning item: its summary); the reply is primed with ``REPLY_PRIMING`` (3) more; each tool definition
  costs the tokens of its compact JSON. Images, audio and files are not text and are not counted. On
  OpenAI's published example this gives the API's own figures (129 tokens for GPT-4, 124 for GPT-4o).
- **output**: the tokens of what the upstream produced: its text, its reasoning (also shown as
  ``reasoning_tokens``), and each tool call's name and arguments, every piece counted whole.

Loaded encodings are kept for the life of the process (about 90 MB and one second to load, the first time a
count is needed); counting is CPU work, so callers on the event loop run it in a thread.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from aicy.protocol.upstream_chat import chat_request_body
from aicy.types import JSON, GenerationRequest

log = logging.getLogger("aicy.tokens")

O200K = "o200k_base"
CL100K = "cl100k_base"
DEFAULT_ENCODING = O200K
PER_MESSAGE = 3
PER_NAME = 1  # a message's ``name`` (a Chat participant's, not a tool call's) costs one more
REPLY_PRIMING = 3
BYTES_PER_TOKEN = 4  # only if the tokenizer cannot be loaded at all (a broken install): a rough estimate
_MAX_DEPTH = 6  # how deep texts are looked for inside one message (parts of parts of tool outputs…)
# The fields of a Chat message or a Responses input item whose strings are text the model reads.
_TEXT_FIELDS = (
    "role",
    "name",
    "content",
    "text",
    "refusal",
    "tool_calls",
    "function_call",
    "function",
    "arguments",
    "input",
    "output",
    "summary",
)
_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5", "gpt-35")
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss", "chatgpt-", "o1", "o3", "o4")


def known_encoding(*models: str | None) -> str | None:
    """The encoding of the first name that belongs to a known family; None when none does."""
    for model in models:
        if not model:
            continue
        name = model.lower().rsplit("/", 1)[-1]
        if name == "gpt-4" or name.startswith(_CL100K_PREFIXES):
            return CL100K
        if name.startswith(_O200K_PREFIXES):
            return O200K
    return None


def encoding_for(*models: str | None) -> str:
    """The encoding of the first name that belongs to a known family; ``o200k_base`` when none does."""
    return known_encoding(*models) or DEFAULT_ENCODING


_loading = threading.Lock()


@functools.cache
def _tokenizer(encoding: str) -> Any:
    with _loading:  # quicktok's own cache is not guarded: two threads must not load the same file twice
        import quicktok

        return quicktok.get_encoding(encoding)


def count_text(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """The tokens of ``text`` as ordinary text (a special token's spelling is counted as the text it is)."""
    if not text:
        return 0
    try:
        tokenizer = _tokenizer(encoding)
    except Exception:  # never fails a settlement: a rough count, and the log says why
        log.exception("the %s tokenizer could not be loaded; estimating by bytes", encoding)
        return -(-len(text.encode("utf-8", "replace")) // BYTES_PER_TOKEN)
    try:
        return int(tokenizer.count(text))
    except (TypeError, UnicodeEncodeError):  # a lone surrogate (JSON allows "\ud800"): counted as U+FFFD
        return int(tokenizer.count(text.encode("utf-8", "replace").decode("utf-8")))


def _texts(value: Any, depth: int = 0) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif depth >= _MAX_DEPTH:
        return
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item, depth + 1)
    elif isinstance(value, dict):
        for key in _TEXT_FIELDS:
            inner = value.get(key)
            if inner is not None:
                yield from _texts(inner, depth + 1)


def message_tokens(message: Any, encoding: str) -> int:
    """One message or input item: the per-message overhead, its texts, and one more for a ``name``."""
    named = isinstance(message, dict) and isinstance(message.get("name"), str) and "role" in message
    return PER_MESSAGE + PER_NAME * named + sum(count_text(text, encoding) for text in _texts(message))


def tool_tokens(tools: Any, encoding: str) -> int:
    """Tool definitions, each as compact JSON."""
    if not isinstance(tools, list):
        return 0
    return sum(count_text(orjson.dumps(tool).decode(), encoding) for tool in tools if tool)


def chat_input_tokens(body: JSON, encoding: str) -> int:
    """A Chat Completions request: its messages and tools."""
    messages = body.get("messages")
    total = REPLY_PRIMING + tool_tokens(body.get("tools"), encoding)
    if isinstance(messages, list):
        total += sum(message_tokens(message, encoding) for message in messages)
    return total


def responses_input_tokens(body: JSON, encoding: str) -> int:
    """A Responses request: its instructions (a system message), its input (a string is one user message,
    else each item), and its tools."""
    total = REPLY_PRIMING + tool_tokens(body.get("tools"), encoding)
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        total += message_tokens({"role": "system", "content": instructions}, encoding)
    items = body.get("input")
    if isinstance(items, str):
        total += message_tokens({"role": "user", "content": items}, encoding)
    elif isinstance(items, list):
        total += sum(message_tokens(item, encoding) for item in items)
    return total


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a call sent its backend, kept by reference and counted only when asked: the customer's body
    relayed to an upstream of its API (``api``), or a neutral request (counted in its Chat form)."""

    models: tuple[str, ...]
    api: Literal["chat", "responses"] = "chat"
    body: JSON | None = None
    request: GenerationRequest | None = None

    @property
    def encoding(self) -> str:
        return encoding_for(*self.models)

    def tokens(self) -> int:
        encoding = self.encoding
        if self.request is not None:
            body = chat_request_body(self.request, self.models[0] if self.models else "", stream=False)
            return chat_input_tokens(body, encoding)
        if self.body is None:
            return 0
        if self.api == "responses":
            return responses_input_tokens(self.body, encoding)
        return chat_input_tokens(self.body, encoding)


def output_tokens(pieces: Iterable[str], encoding: str) -> int:
    """Pieces of output, each counted whole (a text, a reasoning, a tool call's arguments)."""
    return sum(count_text(piece, encoding) for piece in pieces)
