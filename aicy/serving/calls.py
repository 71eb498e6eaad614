"""Opening a model call: resolve the model, validate per-model parameters, pick a backend, fail over.

This is the one place every generation passes, so admission (queueing) and metering (reservation,
settlement) wrap the call here. A channel that fails before the client has seen a byte is skipped for the
next candidate; an upstream of the client's own API is relayed as is, any other is translated.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aicy.accounting.money import worst_case
from aicy.accounting.policy import check_model, spend_limits
from aicy.domain.keys import Principal
from aicy.domain.models import ModelInfo
from aicy.errors import AicyError, InvalidRequest, ModelNotFound, UnsupportedValue
from aicy.protocol.ids import new_id
from aicy.serving.metering import Meter, PartialUsage
from aicy.serving.services import Services
from aicy.storage.billing import NotEnoughFunds
from aicy.types import JSON, GenerationRequest, WireApi
from aicy.upstream.base import Backend, PreparedCall
from aicy.upstream.failures import UpstreamFailure
from aicy.upstream.openai_http import HttpBackend, UpstreamReply

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
class OpenCall:
    """A started call: exactly one of ``translated`` and ``relayed`` is set; ``meter`` settles it."""

    model: ModelInfo
    backend: str
    upstream_model: str
    meter: Meter
    translated: PreparedCall | None = None
    relayed: UpstreamReply | None = None


def resolve_model(services: Services, model_id: str) -> ModelInfo:
    model = services.router.catalog.get(model_id)
    if model is None or not services.router.serves(model_id):
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


async def _start(backend: Backend, model: ModelInfo, plan: CallPlan, meter: Meter) -> OpenCall:
    meter.channel = backend.name
    if isinstance(backend, HttpBackend):
        upstream_model = meter.upstream_model = backend.upstream_model(model)
        if backend.wire_api == plan.api:
            reply = await backend.open(plan.relay_body(upstream_model), streaming=plan.streaming)
            return OpenCall(model, backend.name, upstream_model, meter, relayed=reply)
        translated = await backend.prepare(plan.generation, model)
        return OpenCall(model, backend.name, upstream_model, meter, translated=translated)
    meter.upstream_model = model.id
    local = await backend.prepare(plan.generation, model)
    if isinstance(local, PartialUsage):
        meter.partial = local
    return OpenCall(model, backend.name, model.id, meter, translated=local)


async def _reserve(
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


@dataclass(slots=True)
class PendingCall:
    """A request that passed every check and holds its reservation, waiting for a backend slot."""

    services: Services
    plan: CallPlan
    model: ModelInfo
    meter: Meter
    candidates: list[Backend]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.candidates)

    def admit_now(self) -> str | None:
        return self.services.admission.try_acquire(self.names)

    async def admit(self) -> str:
        """Wait for a slot; the deadline and a client that leaves end the wait (the caller releases money)."""
        started = time.monotonic()
        try:
            return await self.services.admission.acquire(
                self.meter.principal.account_id, self.names, self.services.settings.queue_deadline_seconds
            )
        finally:
            self.meter.queue_ms = int((time.monotonic() - started) * 1000)

    async def start(self, admitted: str) -> OpenCall:
        """Open the admitted backend; before any byte went out, fail over to others that have room."""
        failure: UpstreamFailure | None = None
        for round_number in range(2):
            order = sorted(self.candidates, key=lambda b: b.name != admitted)
            for backend in order[: self.services.settings.upstream_max_attempts]:
                if backend.name == admitted:
                    slot: str | None = admitted
                    admitted = ""
                else:
                    slot = self.services.admission.try_acquire([backend.name])
                if slot is None:
                    continue
                try:
                    return await self._open(backend, slot)
                except UpstreamFailure as exc:
                    failure = exc
            wait = failure.retry_after if failure is not None else None
            if round_number or wait is None or wait > self.services.settings.upstream_retry_wait_max:
                break
            await asyncio.sleep(wait)
        if failure is None:
            raise ModelNotFound(self.model.id)
        raise failure.error

    async def _open(self, backend: Backend, slot: str) -> OpenCall:
        """Start on ``backend`` with ``slot``, which goes back when the call settles or fails to open."""
        release = functools.partial(self.services.admission.release, slot)
        try:
            opened = await _start(backend, self.model, self.plan, self.meter)
        except BaseException:
            release()
            raise
        self.meter.on_settled = release
        self.services.router.remember(self.plan.affinity_key, opened.backend)
        return opened


async def reserve_call(
    services: Services, principal: Principal, plan: CallPlan, context: RequestContext
) -> PendingCall:
    """Everything that can be refused with a plain HTTP error: model, key policy, parameters, money."""
    model = resolve_model(services, plan.model)
    check_model(principal.policy, model.id)
    validate(model, plan)
    services.limiter.admit(principal.key_id, principal.policy)
    candidates = services.router.candidates(model.id, plan.prefer_channel, plan.api)
    if not candidates:
        raise ModelNotFound(model.id)
    meter = await _reserve(services, principal, model, plan, context)
    return PendingCall(services, plan, model, meter, candidates)
