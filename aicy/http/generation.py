"""Serving a generation request over HTTP: at once when a backend has room, else wait with keep-alives.

A request admitted at once gets its true status (errors are plain HTTP errors). One that must wait:
a stream starts at once (SSE comments, and for Responses ``response.created`` then ``in_progress``
heartbeats) and reports later errors in-band; a non-stream waits up to the grace period for its true
status, then commits to 200 and pads with blank lines until its JSON body (or an error body) is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from aicy.errors import AicyError
from aicy.http.keepalive import KeepAlive, once, padding
from aicy.http.streaming import PADDED_JSON_HEADERS, ClientGone, EventStreamResponse, unless_disconnected
from aicy.serving.admission import QueueDeadline
from aicy.serving.calls import OpenCall, PendingCall
from aicy.serving.services import Services
from aicy.types import JSON

CLIENT_CLOSED = 499


class GenerationCall(Protocol):
    streaming: bool
    pending: PendingCall
    opened: OpenCall | None
    outcome: str

    async def begin(self, admitted: str) -> None: ...

    def preamble(self) -> list[bytes]: ...

    def heartbeat(self) -> bytes | None: ...

    def failure(self, error: AicyError) -> bytes: ...

    def stream(self) -> AsyncIterator[bytes]: ...

    async def complete(self, settle: bool = True) -> JSON: ...


def queue_timeout(seconds: float) -> AicyError:
    return AicyError(
        f"The servers are busy: this request waited {int(seconds)} seconds without starting, so it was "
        "closed. Nothing was charged. Please retry later.",
        status=503,
        type="server_error",
        code="queue_timeout",
    )


def _headers(call: GenerationCall) -> dict[str, str]:
    headers = {"x-aicy-queue-ms": str(call.pending.meter.queue_ms)}
    if call.opened is not None:
        headers["x-aicy-model"] = call.opened.model.id
        headers["x-aicy-upstream-model"] = call.opened.upstream_model
    return headers


async def _begin(call: GenerationCall, admitted: str) -> None:
    """Open the backend; if that fails, nothing is owed and the reservation goes back."""
    try:
        await call.begin(admitted)
    except BaseException:
        await call.pending.meter.release("failed")
        raise


async def _admit(call: GenerationCall, deadline: float) -> str:
    """Wait in the queue; a deadline or a client that leaves gives the reservation back."""
    try:
        return await call.pending.admit()
    except asyncio.CancelledError:
        await call.pending.meter.release("client_closed")
        raise
    except QueueDeadline:
        await call.pending.meter.release("queue_timeout")
        raise queue_timeout(deadline) from None


async def serve(request: Request, services: Services, call: GenerationCall) -> ASGIApp:
    settings = services.settings
    admitted = call.pending.admit_now()
    if admitted is None and not call.streaming:
        admitted, waiting = await _wait_in_grace(call, settings.nonstream_grace_seconds)
        if waiting is not None:
            work = _committed_body(call, waiting, settings.queue_deadline_seconds)
            return EventStreamResponse(once(work), PADDED_JSON_HEADERS, padding(settings.keepalive_seconds))
    if admitted is None:
        body = _queued_stream(call, settings.queue_deadline_seconds)
    else:
        await _begin(call, admitted)
        if not call.streaming:
            try:
                reply = await unless_disconnected(request.receive, call.complete(settle=False))
            except ClientGone:
                return Response(status_code=CLIENT_CLOSED)
            return SettledAfterSending(orjson.dumps(reply), _headers(call), call)
        body = call.stream()
    keepalive = KeepAlive(
        settings.keepalive_seconds, heartbeat=call.heartbeat, heartbeat_every=settings.heartbeat_seconds
    )
    return EventStreamResponse(body, _headers(call), keepalive)


class SettledAfterSending(Response):
    """A JSON reply whose bill is settled once it is on its way (a transaction less before the client has
    it); settled also if sending fails. Reads of balances wait for it (``BillingStore.settled``)."""

    def __init__(self, body: bytes, headers: dict[str, str], call: GenerationCall) -> None:
        super().__init__(body, headers=headers, media_type="application/json")
        self._call = call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._call.pending.meter.settle(self._call.outcome)


async def _wait_in_grace(call: GenerationCall, grace: float) -> tuple[str | None, asyncio.Task[str] | None]:
    """(admitted, None) within the grace period, else (None, the still-waiting task)."""
    waiting = asyncio.ensure_future(_admit(call, call.pending.services.settings.queue_deadline_seconds))
    try:
        await asyncio.wait_for(asyncio.shield(waiting), grace)
    except TimeoutError:
        return None, waiting
    except asyncio.CancelledError:
        waiting.cancel()
        raise
    return waiting.result(), None


async def _committed_body(call: GenerationCall, waiting: asyncio.Task[str], deadline: float) -> bytes:
    """The JSON that follows the padding: the reply, or an OpenAI error body under the committed 200."""
    try:
        admitted = await waiting
        await _begin(call, admitted)
        return orjson.dumps(await call.complete())
    except AicyError as exc:
        return orjson.dumps(exc.body())
    finally:
        if not waiting.done():
            waiting.cancel()
            with contextlib.suppress(BaseException):
                await waiting


async def _queued_stream(call: GenerationCall, deadline: float) -> AsyncIterator[bytes]:
    for chunk in call.preamble():
        yield chunk
    try:
        admitted = await _admit(call, deadline)
        await _begin(call, admitted)
    except AicyError as exc:
        yield call.failure(exc)
        return
    async for chunk in call.stream():
        yield chunk
