"""POST /v1/chat/completions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from aicy.domain.keys import Principal
from aicy.errors import AicyError, ServerError
from aicy.protocol import chat, sse
from aicy.serving.calls import (
    CHAT_PARAMS,
    CallPlan,
    OpenCall,
    ParamNames,
    PendingCall,
    RequestContext,
    reserve_call,
)
from aicy.serving.services import Services
from aicy.serving.sources import ChatSource, RelayedChat, TranslatedChat
from aicy.types import JSON

log = logging.getLogger("aicy.serving.chat")


@dataclass(slots=True)
class ChatCall:
    """A Chat Completions request from reservation to the last byte.

    ``begin`` opens the backend once admitted; then ``stream`` or ``complete`` produce the reply. While it
    waits, a stream has nothing to send but SSE comments (``preamble`` and ``heartbeat`` are empty).
    """

    streaming: bool
    request: chat.ChatCompletionRequest
    pending: PendingCall
    opened: OpenCall | None = None
    source: ChatSource | None = None
    outcome: str = "completed"  # how a completed reply is settled (see ``complete``)

    @property
    def meter(self) -> Any:
        return self.pending.meter

    async def begin(self, admitted: str) -> None:
        opened = self.opened = await self.pending.start(admitted)
        if opened.relayed is not None:
            self.source = RelayedChat(
                opened.relayed, self.request.model, self.request.include_usage, opened.meter.tracker
            )
        else:
            assert opened.translated is not None
            encoder = chat.ChatEncoder(self.request.model, self.request.include_usage)
            self.source = TranslatedChat(opened.translated, encoder, opened.meter.tracker)

    def preamble(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes | None:
        return None

    def failure(self, error: AicyError) -> bytes:
        return sse.data_event(error.body())

    async def stream(self) -> AsyncIterator[bytes]:
        """Chunks, then the closing bytes, which go out once the bill is settled."""
        assert self.source is not None
        status = "client_closed"
        try:
            async for batch in self.source.batches():
                yield b"".join([sse.data_event(chunk) for chunk in batch])
            status, tail = "completed", sse.DONE
        except AicyError as exc:
            status, tail = "failed", self.failure(exc)
        except Exception:
            log.exception("chat stream failed")
            status, tail = (
                "failed",
                self.failure(ServerError("The server had an error while generating the reply.")),
            )
        finally:
            await self.pending.meter.settle(status)
        yield tail

    async def complete(self, settle: bool = True) -> JSON:
        """The reply. A failure is always settled here; a success only with ``settle`` (otherwise the
        caller settles it with ``outcome`` once the reply is sent)."""
        assert self.source is not None
        status = "failed"
        try:
            completion = await self.source.completion()
            status = "completed"
            return completion
        except asyncio.CancelledError:
            status = "client_closed"
            raise
        finally:
            if settle or status != "completed":
                await self.pending.meter.settle(status)


def _relay_body(body: JSON, streaming: bool) -> Any:
    def build(upstream_model: str) -> JSON:
        relayed = {**body, "model": upstream_model}
        if streaming:
            relayed["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return relayed

    return build


async def start(services: Services, principal: Principal, body: Any, context: RequestContext) -> ChatCall:
    request = chat.parse_request(body)
    streaming = bool(request.stream)
    cache_key = body.get("prompt_cache_key") if isinstance(body.get("prompt_cache_key"), str) else None
    plan = CallPlan(
        api="chat",
        model=request.model,
        reasoning_effort=request.reasoning_effort,
        max_output_tokens=request.max_completion_tokens or request.max_tokens,
        translate=lambda: chat.to_generation(request),
        relay_body=_relay_body(body, streaming),
        streaming=streaming,
        names=chat_params(request),
        prefer_channel=services.router.preferred(cache_key),
        affinity_key=cache_key,
    )
    return ChatCall(streaming, request, await reserve_call(services, principal, plan, context))


def chat_params(request: chat.ChatCompletionRequest) -> ParamNames:
    if request.max_tokens is not None and request.max_completion_tokens is None:
        return replace(CHAT_PARAMS, max_output_tokens="max_tokens")
    return CHAT_PARAMS
