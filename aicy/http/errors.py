"""The one place where errors become OpenAI-shaped JSON replies."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from aicy.errors import AicyError, InvalidRequest, NotFound, ServerError

log = logging.getLogger("aicy.http")
REQUEST_ID_KEY = "aicy.request_id"


def render(error: AicyError) -> Response:
    """The error's reply (the edge adds the request id to every reply)."""
    return Response(
        orjson.dumps(error.body()),
        status_code=error.status,
        headers=dict(error.headers),
        media_type="application/json",
    )


async def on_aicy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AicyError)
    return render(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: AicyError
    if exc.status_code == 404:
        error = NotFound(f"Unknown request URL: {request.method} {request.url.path}.", code="unknown_url")
    elif exc.status_code == 405:
        error = InvalidRequest(
            f"Method {request.method} is not allowed on {request.url.path}.",
            code="method_not_allowed",
            status=405,
        )
    else:
        error = AicyError(str(exc.detail), status=exc.status_code, type="invalid_request_error")
    return render(error)


def unexpected(method: str, path: str, exc: BaseException) -> Response:
    """A bug's reply: logged with its traceback, and a generic 500 (nothing internal reaches the client)."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return render(ServerError("The server had an error while processing your request. Sorry about that!"))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    return unexpected(request.method, request.url.path, exc)
