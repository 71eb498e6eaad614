"""A custom tool's ``input`` streamed out of the JSON arguments a function-only backend writes.

A backend offered a custom tool as a function with one string argument streams its call as JSON fragments
(``{"input": "*** Begin Patch\\n…``). :class:`CustomInputStream` decodes the string as far as it is
unambiguous, so ``response.custom_tool_call_input.delta`` events follow the model as it writes; what does
not fit that shape (other keys first, not JSON at all) is held and settled at the end, where
:func:`final_input` reads the whole arguments.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aicy.protocol.response_tools import CUSTOM_INPUT

_OPENING = re.compile(r'\s*\{\s*"' + CUSTOM_INPUT + r'"\s*:\s*"')
_HEX = frozenset("0123456789abcdefABCDEF")


def final_input(arguments: str) -> str:
    """The call's input: the ``input`` string of JSON arguments, else the arguments as they are (a small
    model may write the free text without the JSON around it)."""
    try:
        parsed: Any = json.loads(arguments, strict=False)  # raw newlines in strings, as models write them
    except ValueError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get(CUSTOM_INPUT), str):
        return _valid(parsed[CUSTOM_INPUT])
    return arguments


def _valid(text: str) -> str:
    """Lone surrogates (``\\udc00`` alone) replaced: the text must encode as UTF-8."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class CustomInputStream:
    """Feed argument fragments; get the decoded input text that became certain."""

    def __init__(self) -> None:
        self._raw = ""
        self._start: int | None = None  # where the string's characters begin in ``_raw``
        self._done = 0  # characters of ``_raw`` decoded so far
        self._closed = False  # the closing quote was seen
        self.sent: list[str] = []

    def feed(self, fragment: str) -> str:
        self._raw += fragment
        if self._start is None:
            match = _OPENING.match(self._raw)
            if match is None:
                return ""
            self._start = self._done = match.end()
        if self._closed:
            return ""
        end = self._safe_end()
        if end <= self._done:
            return ""
        try:
            piece = _valid(json.loads('"' + self._raw[self._done : end] + '"', strict=False))
        except ValueError:  # malformed: the rest is settled from the whole arguments at the end
            self._closed = True
            return ""
        self._done = end
        if end < len(self._raw) and self._raw[end] == '"':
            self._closed = True
        self.sent.append(piece)
        return piece

    def rest(self) -> str:
        """At the end: what must still be sent so that the deltas add up to the final input (empty when what
        was streamed cannot be continued into it; the done event carries the final input anyway)."""
        final = final_input(self._raw)
        streamed = "".join(self.sent)
        return final[len(streamed) :] if final.startswith(streamed) else ""

    def _safe_end(self) -> int:
        """The end of the longest run from ``_done`` that decodes on its own: up to the closing quote, never
        inside an escape, never after half a surrogate pair."""
        raw, i, safe = self._raw, self._done, self._done
        while i < len(raw):
            char = raw[i]
            if char == '"':
                return i
            if char != "\\":
                i += 1
                safe = i
                continue
            if i + 1 >= len(raw):
                return safe
            if raw[i + 1] != "u":
                i += 2
                safe = i
                continue
            digits = raw[i + 2 : i + 6]
            if len(digits) < 4:
                return safe
            if not all(c in _HEX for c in digits):
                return safe  # malformed: left for ``final_input``
            if 0xD800 <= int(digits, 16) <= 0xDBFF and raw[i + 6 : i + 8] != "\\u":
                return safe  # a high surrogate: decoded with its pair
            if 0xD800 <= int(digits, 16) <= 0xDBFF:
                if len(raw) < i + 12:
                    return safe
                i += 12
            else:
                i += 6
            safe = i
        return safe
