"""POST /v1/chat/completions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aicy.domain.keys import Principal
from aicy.protocol import chat
from aicy.serving.calls import CHAT_PARAMS, CallPlan, ParamNames, RequestContext, check
from aicy.serving.dialects import ChatDialect
from aicy.serving.generation import Generation
from aicy.serving.services import Services
from aicy.types import JSON


def _relay_body(body: JSON, streaming: bool) -> Any:
    def build(upstream_model: str) -> JSON:
        relayed = {**body, "model": upstream_model}
        if streaming:
            relayed["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return relayed

    return build


def prepare(services: Services, principal: Principal, body: Any, context: RequestContext) -> Generation:
    """Parse and check a request; the returned generation reserves, runs and settles it."""
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
    model, candidates = check(services, principal, plan)
    return Generation(services, principal, plan, model, candidates, ChatDialect(request), context)


def chat_params(request: chat.ChatCompletionRequest) -> ParamNames:
    if request.max_tokens is not None and request.max_completion_tokens is None:
        return replace(CHAT_PARAMS, max_output_tokens="max_tokens")
    return CHAT_PARAMS
