"""The one owner of a generation's money: reserve → admit → open → stream or collect → settle.

:meth:`Generation.run` is the whole life of a Chat or Responses request once it passed its checks, in one
ordinary ``try``/``finally``: whatever happens after the reservation (the start deadline, every backend
failing, an error mid-stream, the client going away, a bug), the ``finally`` settles it exactly once, with
the status it saw, and gives back the queue place or backend slot. The HTTP layer only chooses the reply's
shape (a :class:`Reply`: JSON, padded JSON or SSE) and cancels the run when the client leaves.

Order of what the customer receives: a whole JSON reply is sent first and billed right after (a
transaction less before the client has it); a stream's closing bytes (``[DONE]``, the terminal event) and
every error go out only after the settlement, so what the customer sees is what was billed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from aicy.domain.keys import Principal
from aicy.domain.models import ModelInfo
from aicy.errors import AicyError, ServerError
from aicy.serving.admission import QueueDeadline, Waiter
from aicy.serving.calls import CallPlan, RequestContext, Started, model_unavailable, reserve, start_on
from aicy.serving.dialects import Dialect
from aicy.serving.metering import Meter
from aicy.serving.services import Services
from aicy.upstream.base import Backend
from aicy.upstream.failures import UpstreamFailure

log = logging.getLogger("aicy.serving")
OMITTED_TOOLS_HEADER = "x-aicy-omitted-tools"


class Reply(Protocol):
    """How the customer receives a generation; ``aicy.http`` implements one per reply shape.

    ``committed`` is true once the status line went out (from then on errors can only go in-band or by
    dropping the connection). ``gone`` is set when the client went away; the run is then cancelled.
    """

    @property
    def committed(self) -> bool: ...

    @property
    def gone(self) -> bool: ...

    async def waiting(
        self, headers: dict[str, str], preamble: bytes, heartbeat: Callable[[], bytes | None] | None
    ) -> None:
        """The request waits for a slot: keep the connection alive as the shape allows."""
        ...

    async def start(self, headers: dict[str, str]) -> None:
        """A stream's status line (nothing when committed already)."""
        ...

    async def send(self, data: bytes) -> None: ...

    async def finish(self, data: bytes, headers: dict[str, str]) -> None:
        """The last bytes (a JSON body, a stream's closing bytes); the reply ends."""
        ...

    async def fail(self, error: AicyError, in_band: bytes) -> None:
        """End with ``error``: a plain HTTP error before the status line, else ``in_band`` or a dropped
        connection, as the shape allows."""
        ...


@dataclass(slots=True)
class Ending:
    """How a generation ended: the status it is settled with, then what the customer is sent."""

    status: str = "failed"
    data: bytes = b""
    error: AicyError | None = None
    before_settling: bool = False  # a whole JSON reply goes out first, then the bill


@dataclass(slots=True)
class Generation:
    """One Chat or Responses request that passed its checks (model, key policy, parameters, rate)."""

    services: Services
    principal: Principal
    plan: CallPlan
    model: ModelInfo
    candidates: list[Backend]
    dialect: Dialect
    context: RequestContext
    _place: Waiter | None = None
    _slot: str | None = None
    _ending: Ending = field(default_factory=Ending)

    @property
    def streaming(self) -> bool:
        return self.plan.streaming

    async def run(self, reply: Reply) -> None:
        try:
            meter = await reserve(self.services, self.principal, self.model, self.plan, self.context)
        except AicyError as exc:
            await reply.fail(exc, self.dialect.failure(exc))
            return
        ending = self._ending
        try:
            self._place = self.services.admission.join(self.principal.account_id, self._names())
            ending = self._ending = await self._serve(reply, meter)
            if ending.before_settling:
                await reply.finish(ending.data, self._headers(meter))
                meter.delivered = True
        except asyncio.CancelledError:
            ending.status = "client_closed" if reply.gone else "cancelled"
            raise
        except Exception:
            log.exception("generation %s failed", self.context.request_id)
            ending.status, ending.error = "failed", ServerError("The server had an error while generating.")
        finally:
            self._give_back()
            await meter.settle(ending.status)
        if ending.error is not None:
            await reply.fail(ending.error, self.dialect.failure(ending.error))
        elif not ending.before_settling:
            await reply.finish(ending.data, self._headers(meter))

    def _names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.candidates)

    def _headers(self, meter: Meter) -> dict[str, str]:
        headers = {"x-aicy-queue-ms": str(meter.queue_ms)}
        if meter.opened and meter.upstream_model is not None:
            headers["x-aicy-model"] = self.model.id
            headers["x-aicy-upstream-model"] = meter.upstream_model
        omitted = self._omitted_tools(meter)
        if omitted:
            headers[OMITTED_TOOLS_HEADER] = ", ".join(omitted)
        return headers

    def _omitted_tools(self, meter: Meter) -> tuple[str, ...]:
        """Hosted tools left out of the request: known once a backend took it, or before that when no
        candidate could take them (none relays the customer's API)."""
        if meter.opened:
            return meter.omitted_tools
        if all(backend.wire_api != self.plan.api for backend in self.candidates):
            return self.plan.generation.omitted_tools
        return ()

    def _give_back(self) -> None:
        admission = self.services.admission
        if self._slot is not None:
            admission.release(self._slot)
        elif self._place is not None:
            admission.leave(self._place)
        self._slot = self._place = None

    async def _serve(self, reply: Reply, meter: Meter) -> Ending:
        assert self._place is not None
        if not self._place.future.done():
            preamble = self.dialect.preamble() if self.streaming else b""
            heartbeat = self.dialect.heartbeat if self.streaming else None
            await reply.waiting(self._headers(meter), preamble, heartbeat)
            deadline = self.services.settings.queue_deadline_seconds
            try:
                self._slot = await self.services.admission.wait(self._place, deadline)
            except QueueDeadline:
                return Ending("queue_timeout", error=queue_timeout(deadline))
            finally:
                meter.queue_ms = int((time.monotonic() - self._place.since) * 1000)
        else:
            self._slot = self._place.future.result()
        self._place = None
        try:
            started = await self._open(meter)
        except AicyError as exc:
            return Ending("failed", error=exc)
        self.services.router.remember(self.plan.affinity_key, started.backend)
        if not self.streaming:
            return await self._collect(started)
        await reply.start(self._headers(meter))
        return await self._stream(reply, started, meter)

    async def _open(self, meter: Meter) -> Started:
        """Start on the admitted backend; before any byte went out, fail over to others that have room,
        and once more after a short ``retry-after``. Routing keeps each backend's score."""
        settings, router = self.services.settings, self.services.router
        failure: UpstreamFailure | None = None
        for round_number in range(2):
            order = sorted(self.candidates, key=lambda b: b.name != self._slot)
            for backend in order[: settings.upstream_max_attempts]:
                if backend.name != self._slot:
                    other = self.services.admission.try_acquire([backend.name])
                    if other is None:
                        continue
                    self._swap_slot(other)
                try:
                    started = await start_on(backend, self.model, self.plan, self.dialect, meter)
                except UpstreamFailure as exc:
                    router.record_failure(backend.name, exc.reason, fatal=exc.auth)
                    failure = exc
                    continue
                except AicyError:
                    router.record_success(backend.name)  # it answered: the request itself was refused
                    raise
                router.record_success(backend.name)
                return started
            wait = failure.retry_after if failure is not None else None
            if round_number or wait is None or wait > settings.upstream_retry_wait_max:
                break
            await asyncio.sleep(wait)
        if failure is None:
            raise model_unavailable(self.model.id)
        raise failure.error

    def _swap_slot(self, slot: str) -> None:
        if self._slot is not None:
            self.services.admission.release(self._slot)
        self._slot = slot

    async def _collect(self, started: Started) -> Ending:
        try:
            body = await started.source.whole()
        except AicyError as exc:  # the upstream reported an error, or went away, while we collected
            return Ending("failed", error=exc)
        status = self.dialect.outcome(body)
        await self.dialect.finished(body, started.backend)
        return Ending(status, orjson.dumps(body), before_settling=True)

    async def _stream(self, reply: Reply, started: Started, meter: Meter) -> Ending:
        """Payloads as they come; a terminal payload is held back until the bill is settled."""
        dialect = self.dialect
        status: str | None = None
        held: list[bytes] = []
        try:
            async with aclosing(started.source.batches()) as batches:
                async for batch in batches:
                    ready = []
                    for payload in batch:
                        ends = dialect.terminal(payload)
                        if ends is None:
                            ready.append(payload)
                            continue
                        status = ends
                        await dialect.finished(payload.get("response") or {}, started.backend)
                        held.append(dialect.frames([payload]))
                    if ready:
                        await reply.send(dialect.frames(ready))
                        meter.delivered = meter.tracker.outputs > 0
        except AicyError as exc:
            return Ending("failed", error=exc)
        if status is not None:
            return Ending(status, b"".join(held))
        end_status, closing = dialect.end(terminal_seen=False)
        return Ending(end_status, closing)


def queue_timeout(seconds: float) -> AicyError:
    return AicyError(
        f"The servers are busy: this request waited {int(seconds)} seconds without starting, so it was "
        "closed. Nothing was charged. Please retry later.",
        status=503,
        type="server_error",
        code="queue_timeout",
    )
