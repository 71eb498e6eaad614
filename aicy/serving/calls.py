"""Opening a model call: resolve the model, validate per-model parameters, prepare a backend.

This is the one place where every generation passes, so admission (queueing) and metering (reservation,
settlement) wrap the call here.
"""

from __future__ import annotations

from dataclasses import dataclass

from aicy.accounting.keys import Principal
from aicy.errors import InvalidRequest, ModelNotFound, UnsupportedValue
from aicy.routing.catalog import ModelInfo
from aicy.serving.services import Services
from aicy.types import GenerationRequest
from aicy.upstream.base import PreparedCall


@dataclass(frozen=True, slots=True)
class ParamNames:
    """How the customer's API spells the parameters we validate, for the ``param`` of an error."""

    reasoning_effort: str
    max_output_tokens: str


CHAT_PARAMS = ParamNames(reasoning_effort="reasoning_effort", max_output_tokens="max_completion_tokens")
RESPONSES_PARAMS = ParamNames(reasoning_effort="reasoning.effort", max_output_tokens="max_output_tokens")


def resolve_model(services: Services, model_id: str) -> ModelInfo:
    model = services.router.catalog.get(model_id)
    if model is None or not services.router.candidates(model_id):
        raise ModelNotFound(model_id)
    return model


def validate(model: ModelInfo, request: GenerationRequest, names: ParamNames) -> None:
    effort = request.reasoning_effort
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
    limit = request.max_output_tokens
    if limit is not None and limit > model.max_output_tokens:
        raise InvalidRequest(
            f"{names.max_output_tokens} is too large: {limit}. This model supports at most "
            f"{model.max_output_tokens} output tokens.",
            param=names.max_output_tokens,
            code="invalid_value",
        )


async def open_call(
    services: Services, principal: Principal, request: GenerationRequest, names: ParamNames
) -> tuple[ModelInfo, PreparedCall]:
    model = resolve_model(services, request.model)
    validate(model, request, names)
    backend = services.router.candidates(model.id)[0]
    return model, await backend.prepare(request, model)
