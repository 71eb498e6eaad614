"""The parts of a model call that :class:`aicy.serving.generation.Generation` puts together: the plan (what
the customer asked for, in both forms), the checks that refuse a request with a plain HTTP error, the
reservation of its worst case, and starting it on a backend (relayed when the backend speaks the customer's
API, translated otherwise).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aicy.accounting.money import worst_case
from aicy.accounting.policy import check_model, spend_limits
from aicy.accounting.tokens import Prompt
from aicy.domain.keys import Principal
from aicy.domain.models import ModelInfo
from aicy.errors import AicyError, InvalidRequest, ModelNotFound, UnsupportedValue
from aicy.protocol.ids import new_id
from aicy.serving.dialects import Dialect
from aicy.serving.metering import Meter
from aicy.serving.services import Services
from aicy.serving.source import Source
from aicy.storage.billing import NotEnoughFunds
from aicy.types import JSON, GenerationRequest, WireApi
from aicy.upstream.base import Backend

log = logging.getLogger("aicy.serving")
ESTIMATED_BYTES_PER_TOKEN = 4


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
    affinity_key: str | None = None
    _generation: GenerationRequest | None = None

    @property
    def generation(self) -> GenerationRequest:
        if self._generation is None:
            self._generation = self.translate()
        return self._generation


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Facts about the HTTP request that billing and the usage log need."""

    request_id: str | None
    client_ip: str | None
    body_bytes: int
    history_bytes: int = 0


@dataclass(slots=True)
class Started:
    """A call under way on ``backend``: its payloads come from ``source``."""

    backend: str
    upstream_model: str
    source: Source


def resolve_model(services: Services, model_id: str) -> ModelInfo:
    model = services.router.catalog.get(model_id)
    if model is None or not services.router.configured(model_id):
        raise ModelNotFound(model_id)
    return model


def model_unavailable(model_id: str) -> AicyError:
    """Every channel of a served model is out of rotation for now: retry soon (SDKs do on 503)."""
    return AicyError(
        f"The model `{model_id}` is temporarily unavailable: its upstreams are being checked. "
        "Please retry shortly.",
        status=503,
        type="service_unavailable_error",
        code="model_unavailable",
        headers={"retry-after": "5"},
    )


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


async def start_on(
    backend: Backend, model: ModelInfo, plan: CallPlan, dialect: Dialect, meter: Meter
) -> Started:
    """Open ``backend`` for this call; an UpstreamFailure means another backend may do better."""
    upstream_model = backend.upstream_model(model)
    meter.channel, meter.upstream_model = backend.name, upstream_model
    source = Source(dialect, meter.tracker)
    names = (upstream_model, model.id)  # the tokenizer's family, if aicy must count the usage itself
    if backend.wire_api == plan.api:
        body = plan.relay_body(upstream_model)
        meter.tracker.prompt = Prompt(names, api=plan.api, body=body)
        source.relayed = await backend.relay(body, streaming=plan.streaming)
    else:
        meter.tracker.prompt = Prompt(names, request=plan.generation)
        meter.omitted_tools = plan.generation.omitted_tools
        source.translated = meter.partial = await backend.prepare(plan.generation, model)
    meter.opened = True
    return Started(backend.name, upstream_model, source)


async def reserve(
    services: Services, principal: Principal, model: ModelInfo, plan: CallPlan, context: RequestContext
) -> Meter:
    """Hold the request's worst case: every byte of input as a token, plus the whole output allowance."""
    input_bound = context.body_bytes + context.history_bytes
    output_bound = plan.max_output_tokens or model.max_output_tokens
    amount = worst_case(input_bound, output_bound, model.prices)
    reservation_id = new_id("rsv_", 12)
    try:
        await services.billing.reserve(
            reservation_id,
            principal.account_id,
            principal.key_id,
            services.node,
            model.id,
            amount,
            spend_limits(principal.policy),
        )
    except NotEnoughFunds as exc:
        raise insufficient_quota(exc.period) from None
    except asyncio.CancelledError:
        await services.billing.settle(reservation_id, None)  # the hold was made before the client left
        raise
    return Meter(
        services.billing,
        services.limiter,
        principal,
        model,
        reservation_id,
        input_estimate=max(1, input_bound // ESTIMATED_BYTES_PER_TOKEN),
        request_id=context.request_id,
        client_ip=context.client_ip,
    )


def insufficient_quota(period: str | None) -> AicyError:
    if period is None:
        message = (
            "You exceeded your current quota: the account balance cannot cover this request. "
            "Top up the account, or lower max_tokens / max_output_tokens."
        )
    else:
        message = (
            f"This API key has reached its spend limit ({period.split(':')[0]}). Raise the limit or wait."
        )
    return AicyError(
        message,
        status=429,
        type="insufficient_quota",
        code="insufficient_quota",
        headers={"x-should-retry": "false"},
    )


def check(services: Services, principal: Principal, plan: CallPlan) -> tuple[ModelInfo, list[Backend]]:
    """Everything that can refuse a request before money moves: model, key policy, parameters, rate."""
    model = resolve_model(services, plan.model)
    check_model(principal.policy, model.id)
    validate(model, plan)
    services.limiter.admit(principal.key_id, principal.policy)
    candidates = services.router.candidates(model.id, plan.prefer_channel, plan.api)
    if not candidates:
        raise model_unavailable(model.id)
    for backend in candidates:
        if backend.wire_api != plan.api:  # translated: the neutral request is needed anyway
            backend.check(plan.generation, plan.api)
    return model, candidates
