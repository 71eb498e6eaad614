"""Reading a JSON request body within the limits: size, time to arrive, and nesting depth."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from aicy.errors import AicyError, InvalidRequest, PayloadTooLarge

# Deepest JSON nesting accepted in a request body (the body object itself is level 1). orjson reads 1,024
# levels but writes only 254, and aicy writes bodies again (stored responses wrap the request's items and
# formats a few levels deeper, relayed bodies are re-encoded), so a deeper body could be accepted and then
# fail half-way. 128 is far beyond any real request.
MAX_JSON_DEPTH = 128
DEFAULT_BODY_READ_TIMEOUT = 30.0
CLIENT_CLOSED = 499


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the {limit} bytes this server accepts.")


def _too_slow(timeout: float) -> AicyError:
    return AicyError(
        f"The request body did not arrive within {timeout:g} seconds (did the Content-Length promise more "
        "bytes than were sent?). The connection is closed; please retry.",
        status=408,
        type="invalid_request_error",
        code="request_timeout",
        headers={"connection": "close"},
    )


def _too_deep(depth: int | None, param: str | None, limit: int) -> InvalidRequest:
    where = f" in '{param}'" if param else ""
    found = f"{depth} levels" if depth is not None else "more levels"
    return InvalidRequest(
        f"The request body nests JSON {found} deep{where}; this server accepts at most {limit} levels of "
        "nested objects and arrays.",
        param=param,
        code="nesting_too_deep",
    )


async def read_json(request: Request, limit: int, timeout: float | None = None) -> Any:
    body, _ = await read_json_sized(request, limit, timeout)
    return body


async def read_json_sized(request: Request, limit: int, timeout: float | None = None) -> tuple[Any, int]:
    """The parsed body and its size in bytes (an upper bound on its tokens, for reservations).

    413 over ``limit`` bytes; 408 when the body has not arrived within ``timeout`` seconds (default: the
    ``body_read_timeout_seconds`` setting); 400 ``invalid_json`` or ``nesting_too_deep``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    if timeout is None:
        timeout = _read_timeout(request)
    try:
        async with asyncio.timeout(timeout):
            raw = await _read(request, limit)
    except TimeoutError:
        raise _too_slow(timeout) from None
    except ClientDisconnect:
        raise AicyError(
            "The client closed the connection before sending the whole body.",
            status=CLIENT_CLOSED,
            type="invalid_request_error",
            code="client_closed",
        ) from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise _too_deep(None, None, MAX_JSON_DEPTH) from None
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The API expects a JSON object; check the "
            "body and the Content-Type header.",
            code="invalid_json",
        ) from None
    check_depth(body, raw)
    return body, len(raw)


async def _read(request: Request, limit: int) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _read_timeout(request: Request) -> float:
    services = getattr(request.app.state, "services", None) if "app" in request.scope else None
    settings = getattr(services, "settings", None)
    return float(getattr(settings, "body_read_timeout_seconds", DEFAULT_BODY_READ_TIMEOUT))


def check_depth(body: Any, raw: bytes | None = None, limit: int = MAX_JSON_DEPTH) -> None:
    """400 ``nesting_too_deep`` naming the top-level field that nests deepest, when the body nests more
    than ``limit`` levels.

    Cheap on the hot path: a body with no more than ``limit`` brackets in all cannot nest deeper (counting
    them is a scan at memory speed); only others are walked, level by level, containers only."""
    if raw is not None and raw.count(b"{") + raw.count(b"[") <= limit:
        return
    depth = nesting_depth(body)
    if depth <= limit:
        return
    param = None
    if isinstance(body, dict):
        param = max(body, key=lambda key: nesting_depth(body[key]))
    raise _too_deep(depth, param, limit)


def nesting_depth(value: Any) -> int:
    """Levels of nested objects and arrays in ``value`` (0 for a scalar, 1 for ``{}`` or ``[1]``)."""
    depth = 0
    level = [value] if type(value) is dict or type(value) is list else []
    while level:  # plain loops: measured twice as fast as comprehensions or isinstance here
        depth += 1
        below: list[Any] = []
        add = below.append
        for container in level:
            for item in container.values() if type(container) is dict else container:
                if type(item) is dict or type(item) is list:
                    add(item)
        level = below
    return depth
