"""POST /v1/chat/completions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from aicy.accounting.keys import Principal
from aicy.errors import AicyError, ServerError
from aicy.protocol import chat, sse
from aicy.serving.calls import CHAT_PARAMS, CallPlan, OpenCall, ParamNames, RequestContext, open_call
from aicy.serving.services import Services
from aicy.serving.sources import ChatSource, RelayedChat, TranslatedChat
from aicy.types import JSON

log = logging.getLogger("aicy.serving.chat")


@dataclass(slots=True)
class ChatCall:
    streaming: bool
    opened: OpenCall
    source: ChatSource

    async def stream(self) -> AsyncIterator[bytes]:
        """Chunks, then the closing bytes, which go out once the bill is settled."""
        status = "client_closed"
        try:
            async for chunk in self.source.chunks():
                yield sse.data_event(chunk)
            status, tail = "completed", sse.DONE
        except AicyError as exc:
            status, tail = "failed", sse.data_event(exc.body())
        except Exception:
            log.exception("chat stream failed")
            error = ServerError("The server had an error while generating the reply.")
            status, tail = "failed", sse.data_event(error.body())
        finally:
            await self.opened.meter.settle(status)
        yield tail

    async def complete(self) -> JSON:
        status = "failed"
        try:
            completion = await self.source.completion()
            status = "completed"
            return completion
        except asyncio.CancelledError:
            status = "client_closed"
            raise
        finally:
            await self.opened.meter.settle(status)


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
    )
    opened = await open_call(services, principal, plan, context)
    services.router.remember(cache_key, opened.backend)
    source: ChatSource
    if opened.relayed is not None:
        source = RelayedChat(opened.relayed, request.model, request.include_usage, opened.meter.tracker)
    else:
        assert opened.translated is not None
        encoder = chat.ChatEncoder(request.model, request.include_usage)
        source = TranslatedChat(opened.translated, encoder, opened.meter.tracker)
    return ChatCall(streaming, opened, source)


def chat_params(request: chat.ChatCompletionRequest) -> ParamNames:
    if request.max_tokens is not None and request.max_completion_tokens is None:
        return replace(CHAT_PARAMS, max_output_tokens="max_tokens")
    return CHAT_PARAMS
