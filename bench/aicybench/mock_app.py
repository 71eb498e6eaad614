"""The mock OpenAI upstream as a raw ASGI app (no framework, so it is never the bottleneck).

Routes: ``POST /v1/chat/completions`` and ``POST /v1/responses`` (streamed or not), ``GET /v1/models``,
``GET /health``, and ``GET``/``PUT /mock/config`` to change the delay and reply size between phases of a run
without restarting (the gateways keep their pooled connections to it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson

from aicybench import mock_bodies

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]


@dataclass(slots=True)
class MockConfig:
    """How the mock answers; one instance per app, changed through ``PUT /mock/config``."""

    delay_ms: float = 0.0  # before the whole reply, or before the first streamed event
    chunk_gap_ms: float = 0.0  # between streamed token events
    completion_tokens: int = 32  # tokens (word pieces) in every reply

    def update(self, changes: dict[str, Any]) -> None:
        for f in fields(self):
            if f.name in changes:
                setattr(self, f.name, type(getattr(self, f.name))(changes[f.name]))


class MockUpstream:
    def __init__(self, config: MockConfig) -> None:
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        method, path = scope["method"], scope["path"].removeprefix("/v1")
        if method == "POST" and path in ("/chat/completions", "/responses"):
            await self._generate(path, body, send)
        elif method == "GET" and path == "/models":
            models = {
                "object": "list",
                "data": [{"id": "bench-model", "object": "model", "owned_by": "mock"}],
            }
            await _respond(send, 200, orjson.dumps(models))
        elif path == "/mock/config":
            if method == "PUT":
                self.config.update(orjson.loads(body))
            await _respond(send, 200, orjson.dumps(asdict(self.config)))
        elif path == "/health":
            await _respond(send, 200, b'{"status":"ok"}')
        else:
            await _respond(send, 404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')

    async def _generate(self, path: str, body: bytes, send: Send) -> None:
        request = orjson.loads(body)
        reply = mock_bodies.make_reply(
            str(request.get("model", "bench-model")), len(body), self.config.completion_tokens
        )
        if self.config.delay_ms > 0:
            await asyncio.sleep(self.config.delay_ms / 1000)
        chat = path == "/chat/completions"
        if not request.get("stream"):
            await _respond(
                send, 200, mock_bodies.chat_completion(reply) if chat else mock_bodies.response(reply)
            )
            return
        if chat:
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            events = mock_bodies.chat_chunks(reply, include_usage)
        else:
            events = mock_bodies.response_events(reply)
        await self._stream(send, events)

    async def _stream(self, send: Send, events: Iterator[bytes]) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        gap = self.config.chunk_gap_ms / 1000
        for i, event in enumerate(events):
            if gap > 0 and i > 1:
                await asyncio.sleep(gap)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
