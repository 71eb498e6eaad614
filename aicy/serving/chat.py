"""POST /v1/chat/completions."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from aicy.accounting.keys import Principal
from aicy.errors import AicyError, ServerError
from aicy.protocol import chat, sse
from aicy.serving.calls import CHAT_PARAMS, ParamNames, open_call
from aicy.serving.services import Services
from aicy.types import JSON
from aicy.upstream.base import PreparedCall

log = logging.getLogger("aicy.serving.chat")


@dataclass(slots=True)
class ChatCall:
    streaming: bool
    model: str
    prepared: PreparedCall
    encoder: chat.ChatEncoder

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self.encoder.start():
            yield sse.data_event(chunk)
        try:
            async for event in self.prepared.events():
                for chunk in self.encoder.feed(event):
                    yield sse.data_event(chunk)
        except AicyError as exc:
            yield sse.data_event(exc.body())
            return
        except Exception:
            log.exception("chat stream failed")
            yield sse.data_event(ServerError("The server had an error while generating the reply.").body())
            return
        yield sse.DONE

    async def complete(self) -> JSON:
        async for event in self.prepared.events():
            self.encoder.feed(event)
        return self.encoder.completion()


async def start(services: Services, principal: Principal, body: Any) -> ChatCall:
    request = chat.parse_request(body)
    generation = chat.to_generation(request)
    _, prepared = await open_call(services, principal, generation, chat_params(request))
    encoder = chat.ChatEncoder(request.model, include_usage=request.include_usage)
    return ChatCall(bool(request.stream), request.model, prepared, encoder)


def chat_params(request: chat.ChatCompletionRequest) -> ParamNames:
    if request.max_tokens is not None and request.max_completion_tokens is None:
        return replace(CHAT_PARAMS, max_output_tokens="max_tokens")
    return CHAT_PARAMS
