"""Streaming replies that stop the producer the moment the client goes away.

Like Starlette's streaming response, the body is sent while a second task listens for
``http.disconnect``; a disconnect cancels the sending task, and the body iterator is always closed, so the
backend stops generating and its ``finally`` blocks run. (Plain asyncio rather than an anyio task group:
the group cost ~0.3 ms before the first byte of every stream.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from starlette.types import Receive, Scope, Send

T = TypeVar("T")

SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}
PADDED_JSON_HEADERS = {
    "content-type": "application/json",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


class ClientGone(Exception):
    """The client disconnected before the reply was ready."""


async def wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class EventStreamResponse:
    """A 200 whose body is produced as it goes (SSE, or a padded JSON reply)."""

    def __init__(self, body: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.headers = {**SSE_HEADERS, **(headers or {})}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        writer = asyncio.current_task()
        assert writer is not None
        writing, gone = True, False

        async def listen() -> None:
            nonlocal gone
            await wait_for_disconnect(receive)
            if writing:
                gone = True
                writer.cancel()

        listener = asyncio.ensure_future(listen())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": raw})
            async for chunk in self.body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone:
                raise
            writer.uncancel()  # the client left: that ends the response, not the server's task
        except OSError:
            pass
        finally:
            writing = False
            listener.cancel()
            aclose = getattr(self.body, "aclose", None)
            if aclose is not None:
                await asyncio.shield(aclose())


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work`` in this task; if the client disconnects first, cancel it and raise :class:`ClientGone`.

    (The work runs in the caller's task, with one listener task beside it: a task of its own and
    ``asyncio.wait`` cost every non-streaming request ~30 µs.)
    """
    current = asyncio.current_task()
    assert current is not None
    waiting, gone = True, False

    def on_disconnect(listener: asyncio.Future[None]) -> None:
        nonlocal gone
        if waiting and not listener.cancelled() and listener.exception() is None:
            gone = True
            current.cancel()

    listener = asyncio.ensure_future(wait_for_disconnect(receive))
    listener.add_done_callback(on_disconnect)
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        current.uncancel()  # the client left: that ends this request, not the server's task
        raise ClientGone from None
    finally:
        waiting = False
        listener.cancel()
