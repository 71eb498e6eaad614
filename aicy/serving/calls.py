"""Opening a model call: resolve the model, validate per-model parameters, pick a backend, fail over.

This is the one place every generation passes, so admission (queueing) and metering (reservation,
settlement) wrap the call here. A channel that fails before the client has seen a byte is skipped for the
next candidate; an upstream of the client's own API is relayed as is, any other is translated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aicy.accounting.keys import Principal
from aicy.errors import InvalidRequest, ModelNotFound, UnsupportedValue
from aicy.routing.catalog import ModelInfo
from aicy.serving.services import Services
from aicy.types import JSON, GenerationRequest, WireApi
from aicy.upstream.base import Backend, PreparedCall
from aicy.upstream.failures import UpstreamFailure
from aicy.upstream.openai_http import HttpBackend, UpstreamReply

log = logging.getLogger("aicy.serving")


@dataclass(frozen=True, slots=True)
class ParamNames:
    """How the customer's API spells the parameters we validate, for the ``param`` of an error."""

    reasoning_effort: str
    max_output_tokens: str


CHAT_PARAMS = ParamNames(reasoning_effort="reasoning_effort", max_output_tokens="max_completion_tokens")
RESPONSES_PARAMS = ParamNames(reasoning_effort="reasoning.effort", max_output_tokens="max_output_tokens")


@dataclass(slots=True)
class CallPlan:
    """What the customer asked for, in both forms: as sent (to relay) and neutral (to translate).

    The neutral form is built only when a backend needs it, so a request that is relayed to an upstream of
    its own API keeps item and tool types aicy cannot translate (Codex's custom tools, hosted tools).
    """

    api: WireApi
    model: str
    reasoning_effort: str | None
    max_output_tokens: int | None
    translate: Callable[[], GenerationRequest]
    relay_body: Callable[[str], JSON]
    streaming: bool
    names: ParamNames
    prefer_channel: str | None = None
    _generation: GenerationRequest | None = None

    @property
    def generation(self) -> GenerationRequest:
        if self._generation is None:
            self._generation = self.translate()
        return self._generation


@dataclass(slots=True)
class OpenCall:
    """A started call: exactly one of ``translated`` and ``relayed`` is set."""

    model: ModelInfo
    backend: str
    upstream_model: str
    translated: PreparedCall | None = None
    relayed: UpstreamReply | None = None


def resolve_model(services: Services, model_id: str) -> ModelInfo:
    model = services.router.catalog.get(model_id)
    if model is None or not services.router.candidates(model_id):
        raise ModelNotFound(model_id)
    return model


def validate(model: ModelInfo, plan: CallPlan) -> None:
    names = plan.names
    effort = plan.reasoning_effort
    if effort is not None:
        if not model.supports_reasoning:
            raise InvalidRequest(
                f"Unsupported parameter: '{names.reasoning_effort}' is not supported with the "
                f"'{model.id}' model.",
                param=names.reasoning_effort,
                code="unsupported_parameter",
            )
        if effort not in model.reasoning_efforts:
            allowed = ", ".join(f"'{e}'" for e in model.reasoning_efforts)
            raise UnsupportedValue(
                f"Unsupported value: '{effort}' is not supported with the '{model.id}' model. "
                f"Supported values are: {allowed}.",
                param=names.reasoning_effort,
            )
    limit = plan.max_output_tokens
    if limit is not None and limit > model.max_output_tokens:
        raise InvalidRequest(
            f"{names.max_output_tokens} is too large: {limit}. This model supports at most "
            f"{model.max_output_tokens} output tokens.",
            param=names.max_output_tokens,
            code="invalid_value",
        )


async def _start(backend: Backend, model: ModelInfo, plan: CallPlan) -> OpenCall:
    if isinstance(backend, HttpBackend):
        upstream_model = backend.upstream_model(model)
        if backend.wire_api == plan.api:
            reply = await backend.open(plan.relay_body(upstream_model), streaming=plan.streaming)
            return OpenCall(model, backend.name, upstream_model, relayed=reply)
        return OpenCall(
            model, backend.name, upstream_model, translated=await backend.prepare(plan.generation, model)
        )
    return OpenCall(model, backend.name, model.id, translated=await backend.prepare(plan.generation, model))


async def open_call(services: Services, principal: Principal, plan: CallPlan) -> OpenCall:
    model = resolve_model(services, plan.model)
    validate(model, plan)
    settings = services.settings
    failure: UpstreamFailure | None = None
    for round_number in range(2):
        candidates = services.router.candidates(model.id, plan.prefer_channel)[
            : settings.upstream_max_attempts
        ]
        for backend in candidates:
            try:
                return await _start(backend, model, plan)
            except UpstreamFailure as exc:
                failure = exc
        wait = failure.retry_after if failure is not None else None
        if round_number or wait is None or wait > settings.upstream_retry_wait_max:
            break
        await asyncio.sleep(wait)
    if failure is None:
        raise ModelNotFound(model.id)
    raise failure.error
