"""The outermost ASGI layer: a request id and CORS headers on every reply, errors in OpenAI's shape, and the
generation routes dispatched straight to their endpoints.

Generation requests are nearly all the traffic, and every layer between the server and an endpoint costs
each request and, for a stream, each chunk (Starlette's error and exception middleware, a CORS and a
request-id middleware, the router, the route's own exception wrapper: five ``send`` wrappers per chunk). The
edge does what those layers did for these routes in one; every other route goes through the Starlette app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aicy.errors import AicyError, InvalidRequest
from aicy.http.errors import REQUEST_ID_KEY, render, unexpected
from aicy.protocol.ids import request_id

log = logging.getLogger("aicy.http")

Endpoint = Callable[[Request], Awaitable[ASGIApp]]
EXPOSED_HEADERS = ("x-request-id", "x-aicy-model", "x-aicy-upstream-model")
ALLOWED_METHODS = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
PREFLIGHT_MAX_AGE = "86400"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def preflight(scope: Scope) -> Response | None:
    """The answer to a CORS preflight, or None when the request is not one. Every origin is allowed: the
    API is authenticated by key, not by cookies, so browsers' apps (chat UIs) may call it from anywhere."""
    if scope["method"] != "OPTIONS" or _header(scope, b"origin") is None:
        return None
    if _header(scope, b"access-control-request-method") is None:
        return None
    headers = {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": ALLOWED_METHODS,
        "access-control-max-age": PREFLIGHT_MAX_AGE,
    }
    requested = _header(scope, b"access-control-request-headers")
    if requested is not None:
        headers["access-control-allow-headers"] = requested.decode("latin-1")
    if _header(scope, b"access-control-request-private-network") is not None:
        headers["access-control-allow-private-network"] = "true"
    return Response("OK", headers=headers, media_type="text/plain")


def nul_in_url(scope: Scope) -> InvalidRequest:
    """No id, name or query value contains U+0000 (PostgreSQL refuses it in text), so a URL with one is a
    400 here rather than a database error further in."""
    param = None
    if "\x00" not in scope["path"]:
        query = parse_qsl(bytes(scope["query_string"]).decode("latin-1"), keep_blank_values=True)
        param = next((key for key, value in query if "\x00" in key + value), None)
    return InvalidRequest(
        "The request URL contains a NUL character (%00), which no id, name or parameter may contain.",
        param=param,
        code="invalid_value",
    )


class Edge:
    """Wraps the Starlette ``app``; ``direct`` maps (method, path) to the endpoints served without it."""

    def __init__(self, app: ASGIApp, direct: Mapping[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.direct = dict(direct)
        self._cors = [
            (b"access-control-allow-origin", b"*"),
            (b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id()
        scope[REQUEST_ID_KEY] = rid
        added = [(b"x-request-id", rid.encode())]
        if _header(scope, b"origin") is not None:
            answer = preflight(scope)
            if answer is not None:
                answer.headers["x-request-id"] = rid
                await answer(scope, receive, send)
                return
            added.extend(self._cors)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            await render(nul_in_url(scope))(scope, receive, send_with_headers)
            return
        endpoint = self.direct.get((scope["method"], scope["path"]))
        if endpoint is None:
            await self.app(scope, receive, send_with_headers)
            return
        scope["app"] = self.app  # what Starlette sets: ``request.app.state`` holds the services
        request = Request(scope, receive)
        try:
            try:
                reply = await endpoint(request)
            except AicyError as exc:
                reply = render(exc)
            await reply(scope, receive, send_with_headers)
        except Exception as exc:
            if started:
                raise  # the server logs it and closes the connection: the client sees a cut reply
            await unexpected(scope["method"], scope["path"], exc)(scope, receive, send_with_headers)
