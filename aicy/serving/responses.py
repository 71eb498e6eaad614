"""POST/GET/DELETE /v1/responses and GET /v1/responses/{id}/input_items."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aicy.accounting.keys import Principal
from aicy.errors import AicyError, InvalidRequest, NotFound
from aicy.protocol import ids, responses, sse
from aicy.protocol.validation import require
from aicy.serving.calls import RESPONSES_PARAMS, open_call
from aicy.serving.services import Services
from aicy.types import JSON
from aicy.upstream.base import PreparedCall

log = logging.getLogger("aicy.serving.responses")


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", code="response_not_found")


@dataclass(slots=True)
class ResponseCall:
    streaming: bool
    store: bool
    model: str
    principal: Principal
    services: Services
    prepared: PreparedCall
    encoder: responses.ResponsesEncoder
    input_items: list[JSON]

    async def _save(self) -> None:
        if self.store:
            await self.services.responses.save(
                self.principal.account_id, self.encoder.response, self.input_items
            )

    async def stream(self) -> AsyncIterator[bytes]:
        for event in self.encoder.start():
            yield sse.typed_event(event)
        try:
            async for neutral in self.prepared.events():
                for event in self.encoder.feed(neutral):
                    yield sse.typed_event(event)
        except AicyError as exc:
            for event in self.encoder.fail(exc.code or exc.type, exc.message):
                yield sse.typed_event(event)
            return
        except Exception:
            log.exception("responses stream failed")
            for event in self.encoder.fail("server_error", "The server had an error while generating."):
                yield sse.typed_event(event)
            return
        closing = self.encoder.finish()
        await self._save()
        for event in closing:
            yield sse.typed_event(event)

    async def complete(self) -> JSON:
        async for neutral in self.prepared.events():
            self.encoder.feed(neutral)
        self.encoder.finish()
        await self._save()
        return self.encoder.response


async def start(services: Services, principal: Principal, body: Any) -> ResponseCall:
    request = responses.parse_request(body)
    history: list[JSON] = []
    if request.previous_response_id:
        found = await services.responses.history(principal.account_id, request.previous_response_id)
        if found is None:
            raise InvalidRequest(
                f"Previous response with id '{request.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        history = found
    items = responses.input_items(request)
    generation = responses.to_generation(request, history, items)
    model, prepared = await open_call(services, principal, generation, RESPONSES_PARAMS)
    skeleton = responses.skeleton(
        request, ids.response_id(), model.id, model.default_temperature, model.default_top_p
    )
    encoder = responses.ResponsesEncoder(skeleton)
    return ResponseCall(
        bool(request.stream),
        request.store is not False,
        request.model,
        principal,
        services,
        prepared,
        encoder,
        items,
    )


async def retrieve(services: Services, principal: Principal, response_id: str) -> JSON:
    stored = await services.responses.get(principal.account_id, response_id)
    if stored is None:
        raise _not_found(response_id)
    return stored.body


async def delete(services: Services, principal: Principal, response_id: str) -> JSON:
    if not await services.responses.delete(principal.account_id, response_id):
        raise _not_found(response_id)
    return {"id": response_id, "object": "response", "deleted": True}


async def list_input_items(
    services: Services, principal: Principal, response_id: str, query: dict[str, str]
) -> JSON:
    stored = await services.responses.get(principal.account_id, response_id)
    if stored is None:
        raise _not_found(response_id)
    limit_text = query.get("limit", "20")
    require(
        limit_text.isdigit() and 1 <= int(limit_text) <= 100,
        "Invalid value for 'limit': expected an integer from 1 to 100.",
        "limit",
    )
    order = query.get("order", "desc")
    require(order in ("asc", "desc"), "Invalid value for 'order': expected 'asc' or 'desc'.", "order")
    items = list(stored.input_items) if order == "asc" else list(reversed(stored.input_items))
    after = query.get("after")
    if after:
        position = next((i for i, item in enumerate(items) if item.get("id") == after), None)
        require(position is not None, f"No input item with id '{after}' in this response.", "after")
        assert position is not None
        items = items[position + 1 :]
    limit = int(limit_text)
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
        "limit": limit,
        "order": order,
        "after": after,
    }
