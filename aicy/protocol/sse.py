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
        self._after_cr = False  # the last read ended in CR: an LF opening the next one belongs to it

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:
        """The events completed by ``chunk``. Lines are found by offset and the buffer is cut once per
        call: an upstream that sends a whole reply in one read (hundreds of lines) costs linear time."""
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the second half of a CRLF split between reads
        self._after_cr = False
        buffer = self._buffer + chunk if self._buffer else chunk
        out: list[tuple[str | None, str]] = []
        start = 0
        carriage = buffer.find(b"\r")
        while True:
            if carriage != -1 and carriage < start:
                carriage = buffer.find(b"\r", start)
            newline = buffer.find(b"\n", start)
            if carriage == -1 or (newline != -1 and newline < carriage):
                if newline == -1:
                    break
                end, following = newline, newline + 1
            elif carriage + 1 == len(buffer):
                end, following, self._after_cr = carriage, carriage + 1, True
            else:
                end = carriage
                following = carriage + (2 if buffer[carriage + 1] == 0x0A else 1)
            dispatched = self._line(buffer[start:end].decode("utf-8", errors="replace"))
            start = following
            if dispatched is not None:
                out.append(dispatched)
        self._buffer = buffer[start:]
        return out

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
