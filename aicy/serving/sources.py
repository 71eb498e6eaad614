"""Where a reply's chunks come from: a translated neutral stream, or a same-API upstream relayed as is.

Both kinds give serving the same two things per API: the stream of wire payloads, or the whole object.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from aicy.protocol.chat import ChatEncoder
from aicy.protocol.responses import ResponsesEncoder
from aicy.serving.metering import UsageTracker
from aicy.types import JSON
from aicy.upstream.base import PreparedCall
from aicy.upstream.openai_http import UpstreamReply, replace_model

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ChatSource(Protocol):
    def batches(self) -> AsyncIterator[list[JSON]]:
        """Chunks, grouped as they became available (each group goes out in one write)."""
        ...

    async def completion(self) -> JSON: ...


class TranslatedChat:
    def __init__(self, call: PreparedCall, encoder: ChatEncoder, tracker: UsageTracker) -> None:
        self.call = call
        self.encoder = encoder
        self.tracker = tracker

    async def batches(self) -> AsyncIterator[list[JSON]]:
        opening = self.encoder.start()
        if opening:
            yield opening
        async for event in self.call.events():
            self.tracker.event(event)
            chunks = self.encoder.feed(event)
            if chunks:
                yield chunks

    async def completion(self) -> JSON:
        async for event in self.call.events():
            self.tracker.event(event)
            self.encoder.feed(event)
        return self.encoder.completion()


class RelayedChat:
    """A Chat upstream's reply, untouched but for the model name (and the usage chunk the client did not ask
    for: aicy always asks the upstream for usage, to bill)."""

    def __init__(self, reply: UpstreamReply, model: str, include_usage: bool, tracker: UsageTracker) -> None:
        self.reply = reply
        self.model = model
        self.include_usage = include_usage
        self.tracker = tracker

    async def batches(self) -> AsyncIterator[list[JSON]]:
        try:
            async for batch in self.reply.batches():
                out = []
                for chunk in batch:
                    self.tracker.chat_chunk(chunk)
                    replace_model(chunk, self.model)
                    if not self.include_usage:
                        if chunk.get("usage") and not chunk.get("choices"):
                            continue
                        chunk.pop("usage", None)
                    out.append(chunk)
                if out:
                    yield out
        finally:
            await self.reply.close()

    async def completion(self) -> JSON:
        try:
            body = await self.reply.json()
        finally:
            await self.reply.close()
        self.tracker.chat_chunk(body)
        replace_model(body, self.model)
        return body


class TranslatedResponses:
    def __init__(
        self, call: PreparedCall, encoder: ResponsesEncoder, tracker: UsageTracker, started: bool = False
    ) -> None:
        self.call = call
        self.encoder = encoder
        self.tracker = tracker
        self.started = started  # response.created already went out while the request waited

    async def batches(self) -> AsyncIterator[list[JSON]]:
        opening = [] if self.started else self.encoder.start()
        if opening:
            yield opening
        async for neutral in self.call.events():
            self.tracker.event(neutral)
            events = self.encoder.feed(neutral)
            if events:
                yield events
        closing = self.encoder.finish()
        if closing:
            yield closing

    async def response(self) -> JSON:
        async for neutral in self.call.events():
            self.tracker.event(neutral)
            self.encoder.feed(neutral)
        self.encoder.finish()
        return self.encoder.response

    def fail(self, code: str, message: str) -> list[JSON]:
        return self.encoder.fail(code, message)


class RelayedResponses:
    """A Responses upstream's events, untouched but for the model name and the chain id aicy resolved.

    When aicy already opened the stream itself (``response.created`` sent while the request waited in the
    queue), ``takeover`` is that stream's encoder: the upstream's own opening events are dropped and the rest
    carry aicy's response id and continue its sequence numbers, so clients see one consistent response.
    """

    def __init__(
        self,
        reply: UpstreamReply,
        model: str,
        previous_response_id: str | None,
        tracker: UsageTracker,
        takeover: ResponsesEncoder | None = None,
    ) -> None:
        self.reply = reply
        self.tracker = tracker
        self.takeover = takeover
        self.model = model
        self.previous_response_id = previous_response_id
        self.last_sequence = -1
        self.snapshot: JSON = {}

    def _restore(self, payload: JSON) -> None:
        replace_model(payload, self.model)
        inner = payload.get("response")
        target = inner if isinstance(inner, dict) else payload
        if "previous_response_id" in target:
            target["previous_response_id"] = self.previous_response_id

    async def batches(self) -> AsyncIterator[list[JSON]]:
        try:
            async for batch in self.reply.batches():
                out = []
                for event in batch:
                    self._restore(event)
                    self.tracker.responses_event(event)
                    if self.takeover is not None and not self._take_over(event):
                        continue
                    if isinstance(event.get("sequence_number"), int):
                        self.last_sequence = event["sequence_number"]
                    if isinstance(event.get("response"), dict):
                        self.snapshot = event["response"]
                    out.append(event)
                if out:
                    yield out
        finally:
            await self.reply.close()

    def _take_over(self, event: JSON) -> bool:
        """Fit an upstream event into aicy's already-open stream; False drops it."""
        assert self.takeover is not None
        if event.get("type") in ("response.created", "response.in_progress"):
            return False
        event["sequence_number"] = self.takeover.next_sequence()
        inner = event.get("response")
        if isinstance(inner, dict):
            inner["id"] = self.takeover.response["id"]
        return True

    async def response(self) -> JSON:
        try:
            body = await self.reply.json()
        finally:
            await self.reply.close()
        self._restore(body)
        self.tracker.response(body)
        return body

    def fail(self, code: str, message: str) -> list[JSON]:
        if self.takeover is not None:
            return self.takeover.fail(code, message)
        response: dict[str, Any] = {
            **self.snapshot,
            "status": "failed",
            "error": {"code": code, "message": message},
        }
        self.last_sequence += 1
        return [{"type": "response.failed", "sequence_number": self.last_sequence, "response": response}]
