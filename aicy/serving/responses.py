"""POST/GET/DELETE /v1/responses and GET /v1/responses/{id}/input_items."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from aicy.domain.keys import Principal
from aicy.errors import AicyError, InvalidRequest, NotFound
from aicy.protocol import ids, responses
from aicy.protocol.response_tools import ToolSet
from aicy.protocol.validation import int_param, require
from aicy.serving.calls import RESPONSES_PARAMS, CallPlan, RequestContext, check
from aicy.serving.dialects import ResponsesDialect
from aicy.serving.generation import Generation
from aicy.serving.services import Services
from aicy.types import JSON


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", code="response_not_found")


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


def _tools(request: responses.ResponsesRequest) -> ToolSet | None:
    """How a translating backend's calls map back to the customer's tools. A request whose tools cannot be
    translated is refused when a translating backend is chosen (``check``); relayed, it needs no map."""
    try:
        return responses.request_tools(request)
    except AicyError:
        return None


async def prepare(services: Services, principal: Principal, body: Any, context: RequestContext) -> Generation:
    """Parse and check a request, with its stored history; the returned generation reserves, runs, stores
    and settles it."""
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
    model, candidates = check(services, principal, plan)
    skeleton = responses.skeleton(
        request, ids.response_id(), model.id, model.default_temperature, model.default_top_p
    )
    if skeleton["reasoning"]["effort"] is None:
        skeleton["reasoning"]["effort"] = model.default_reasoning_effort

    async def store(response: JSON, channel: str | None, upstream_id: str | None) -> None:
        await services.responses.save(principal.account_id, response, items, channel, upstream_id)

    encoder = responses.ResponsesEncoder(skeleton, _tools(request))
    dialect = ResponsesDialect(request, encoder, store if request.store is not False else None)
    return Generation(services, principal, plan, model, candidates, dialect, context)


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
    limit = int_param(query, "limit", 20, 1, 100)
    order = query.get("order", "desc")
    require(order in ("asc", "desc"), "Invalid value for 'order': expected 'asc' or 'desc'.", "order")
    items = list(stored.input_items) if order == "asc" else list(reversed(stored.input_items))
    after = query.get("after")
    if after:
        position = next((i for i, item in enumerate(items) if item.get("id") == after), None)
        require(position is not None, f"No input item with id '{after}' in this response.", "after")
        assert position is not None
        items = items[position + 1 :]
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
