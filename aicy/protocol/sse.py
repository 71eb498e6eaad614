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
