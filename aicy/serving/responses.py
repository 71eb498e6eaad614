"""POST/GET/DELETE /v1/responses and GET /v1/responses/{id}/input_items."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from aicy.domain.keys import Principal
from aicy.errors import AicyError, InvalidRequest, NotFound, ServerError
from aicy.protocol import ids, responses, sse
from aicy.protocol.validation import require
from aicy.serving.calls import RESPONSES_PARAMS, CallPlan, OpenCall, PendingCall, RequestContext, reserve_call
from aicy.serving.services import Services
from aicy.serving.sources import RelayedResponses, TranslatedResponses
from aicy.types import JSON

log = logging.getLogger("aicy.serving.responses")
STORED_STATUSES = frozenset({"completed", "incomplete"})
TERMINAL = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", code="response_not_found")


@dataclass(slots=True)
class ResponseCall:
    """A Responses request from reservation to the last byte.

    While it waits in the queue, a stream has already shown ``response.created`` (``preamble``) and repeats
    ``response.in_progress`` (``heartbeat``) until output begins; ``begin`` opens the backend once admitted.
    """

    streaming: bool
    store: bool
    principal: Principal
    services: Services
    request: responses.ResponsesRequest
    pending: PendingCall
    input_items: list[JSON]
    encoder: responses.ResponsesEncoder
    opened: OpenCall | None = None
    source: TranslatedResponses | RelayedResponses | None = None
    outcome: str = "completed"  # how a finished response is settled (see ``complete``)
    opened_early: bool = False
    output_started: bool = False

    async def begin(self, admitted: str) -> None:
        opened = self.opened = await self.pending.start(admitted)
        tracker = opened.meter.tracker
        if opened.relayed is not None:
            takeover = self.encoder if self.opened_early else None
            self.source = RelayedResponses(
                opened.relayed, self.request.model, self.request.previous_response_id, tracker, takeover
            )
        else:
            assert opened.translated is not None
            self.source = TranslatedResponses(
                opened.translated, self.encoder, tracker, started=self.opened_early
            )

    def preamble(self) -> list[bytes]:
        self.opened_early = True
        return [sse.typed_event(e) for e in self.encoder.start()]

    def heartbeat(self) -> bytes | None:
        if not self.opened_early or self.output_started:
            return None
        return sse.typed_event(self.encoder.heartbeat())

    def failure(self, error: AicyError) -> bytes:
        failed = self.source.fail if self.source is not None else self.encoder.fail
        return b"".join(sse.typed_event(e) for e in failed(error.code or error.type, error.message))

    async def _save(self, response: JSON) -> None:
        if self.store and response.get("status") in STORED_STATUSES and isinstance(response.get("id"), str):
            channel = self.opened.backend if self.opened else None
            await self.services.responses.save(
                self.principal.account_id, response, self.input_items, channel=channel
            )

    async def stream(self) -> AsyncIterator[bytes]:
        """Events; the response is stored and the bill settled before the terminal event goes out."""
        assert self.source is not None
        status = "client_closed"
        closing: list[bytes] = []
        try:
            async for batch in self.source.batches():
                ready = []
                for event in batch:
                    kind = event.get("type")
                    if kind in TERMINAL:
                        status = TERMINAL[kind]
                        await self._save(event.get("response") or {})
                        closing.append(sse.typed_event(event))
                        continue
                    ready.append(sse.typed_event(event))
                if ready:
                    self.output_started = True
                    yield b"".join(ready)
        except AicyError as exc:
            status, closing = "failed", [self.failure(exc)]
        except Exception:
            log.exception("responses stream failed")
            status, closing = (
                "failed",
                [self.failure(ServerError("The server had an error while generating."))],
            )
        finally:
            await self.pending.meter.settle(status)
        for chunk in closing:
            yield chunk

    async def complete(self, settle: bool = True) -> JSON:
        """The response. A failure is always settled here; a finished response only with ``settle``
        (otherwise the caller settles it with ``outcome`` once the reply is sent)."""
        assert self.source is not None
        status = "failed"
        finished = False
        try:
            response = await self.source.response()
            status = str(response.get("status") or "completed")
            await self._save(response)
            finished, self.outcome = True, status
            return response
        except asyncio.CancelledError:
            status = "client_closed"
            raise
        finally:
            if settle or not finished:
                await self.pending.meter.settle(status)


async def _history(
    services: Services, principal: Principal, request: responses.ResponsesRequest
) -> tuple[list[JSON], str | None]:
    """The stored conversation before this request, and the channel that served its last turn."""
    if not request.previous_response_id:
        return [], None
    found = await services.responses.history(principal.account_id, request.previous_response_id)
    if found is None:
        raise InvalidRequest(
            f"Previous response with id '{request.previous_response_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return found


def _relay_body(body: JSON, history: list[JSON], items: list[JSON]) -> Any:
    """The client's body for an upstream of the same API; aicy's own chain is spelled out as input."""

    def build(upstream_model: str) -> JSON:
        relayed = {**body, "model": upstream_model}
        if history:
            relayed.pop("previous_response_id", None)
            relayed["input"] = history + items
        return relayed

    return build


async def start(services: Services, principal: Principal, body: Any, context: RequestContext) -> ResponseCall:
    request = responses.parse_request(body)
    history, last_channel = await _history(services, principal, request)
    items = responses.input_items(request)
    plan = CallPlan(
        api="responses",
        model=request.model,
        reasoning_effort=request.reasoning.effort if request.reasoning else None,
        max_output_tokens=request.max_output_tokens,
        translate=lambda: responses.to_generation(request, history, items),
        relay_body=_relay_body(body, history, items),
        streaming=bool(request.stream),
        names=RESPONSES_PARAMS,
        prefer_channel=last_channel or services.router.preferred(request.prompt_cache_key),
        affinity_key=request.prompt_cache_key,
    )
    context = replace(context, history_bytes=len(orjson.dumps(history)) if history else 0)
    pending = await reserve_call(services, principal, plan, context)
    model = pending.model
    skeleton = responses.skeleton(
        request, ids.response_id(), model.id, model.default_temperature, model.default_top_p
    )
    if skeleton["reasoning"]["effort"] is None:
        skeleton["reasoning"]["effort"] = model.default_reasoning_effort
    return ResponseCall(
        bool(request.stream),
        request.store is not False,
        principal,
        services,
        request,
        pending,
        items,
        responses.ResponsesEncoder(skeleton),
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
