"""Reading a JSON request body within the size limit."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from aicy.errors import InvalidRequest, PayloadTooLarge


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the {limit} bytes this server accepts.")


async def read_json(request: Request, limit: int) -> Any:
    body, _ = await read_json_sized(request, limit)
    return body


async def read_json_sized(request: Request, limit: int) -> tuple[Any, int]:
    """The parsed body and its size in bytes (an upper bound on its tokens, for reservations)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return orjson.loads(raw), len(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The API expects a JSON object; check the "
            "body and the Content-Type header.",
            code="invalid_json",
        ) from None
