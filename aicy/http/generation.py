"""Serving a generation over HTTP: pick the reply's shape, run the generation, stop it if the client leaves.

The generation (``aicy.serving.generation``) owns everything else, its money included; this layer never
touches a meter. A disconnect is heard by a listener task beside the run, which marks the reply ``gone`` and
cancels the run (so the backend stops producing at once); the run settles with ``client_closed``.
"""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send

from aicy.http.replies import CLIENT_CLOSED, JsonReply, SseReply
from aicy.serving.generation import Generation
from aicy.settings import Settings


async def wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class GenerationResponse:
    """The ASGI reply of a generation: SSE when it streams, JSON (padded while it waits) when not."""

    def __init__(self, generation: Generation, settings: Settings) -> None:
        self.generation = generation
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        reply: SseReply | JsonReply
        if self.generation.streaming:
            reply = SseReply(scope, receive, send, settings.keepalive_seconds, settings.heartbeat_seconds)
        else:
            reply = JsonReply(
                scope, receive, send, settings.keepalive_seconds, settings.nonstream_grace_seconds
            )
        running = asyncio.current_task()
        assert running is not None

        def on_disconnect(listener: asyncio.Future[None]) -> None:
            if not reply.ended and not listener.cancelled() and listener.exception() is None:
                reply.gone = True
                running.cancel()

        listener = asyncio.ensure_future(wait_for_disconnect(receive))
        listener.add_done_callback(on_disconnect)
        try:
            await self.generation.run(reply)
        except asyncio.CancelledError:
            if not reply.gone:
                raise
            running.uncancel()  # the client left: that ends this request, not the server's task
            if not reply.committed:
                reply.ended = True
                await send({"type": "http.response.start", "status": CLIENT_CLOSED, "headers": []})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            reply.close()
            listener.cancel()
