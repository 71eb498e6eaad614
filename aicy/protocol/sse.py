"""Server-sent events framing: every event ends with a blank line; no ``id:``; keep-alives are comments."""

from __future__ import annotations

import orjson

from aicy.types import JSON

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"


def data_event(payload: JSON) -> bytes:
    """A Chat Completions chunk: ``data:`` only."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def typed_event(payload: JSON) -> bytes:
    """A Responses event: ``event:`` equal to the JSON ``type``, then ``data:``."""
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class SSEDecoder:
    """Incremental reader of an upstream event stream: bytes in, ``(event, data)`` pairs out.

    Follows the WHATWG rules the OpenAI SDK uses: lines end in CRLF, LF or CR; ``:`` lines are comments;
    several ``data:`` lines join with a newline; an event is dispatched on a blank line.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:
        self._buffer += chunk
        out: list[tuple[str | None, str]] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return out
            end, width = cut
            line = self._buffer[:end].decode("utf-8", errors="replace")
            self._buffer = self._buffer[end + width :]
            dispatched = self._line(line)
            if dispatched is not None:
                out.append(dispatched)

    def _line(self, line: str) -> tuple[str | None, str] | None:
        if not line:
            if not self._data and self._event is None:
                return None
            event, data = self._event, "\n".join(self._data)
            self._event, self._data = None, []
            return event, data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """Where the first line ends and how wide its terminator is; None while the line is incomplete."""
    newline = buffer.find(b"\n")
    carriage = buffer.find(b"\r")
    if carriage == -1 or (newline != -1 and newline < carriage):
        return (newline, 1) if newline != -1 else None
    if carriage + 1 == len(buffer):
        return None  # a CR at the end may be the first half of CRLF
    return carriage, 2 if buffer[carriage + 1] == 0x0A else 1
