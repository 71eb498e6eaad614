"""The Backend protocol every model server implements (the embedded engine, OpenAI-compatible upstreams).

A backend can be called two ways, and serving never needs to know which kind it holds:

- **translated**: ``prepare`` takes a neutral :class:`GenerationRequest`, does everything that can fail with a
  clean HTTP error (validation, prompt too long, the upstream's status) before any byte goes to the client,
  and gives a :class:`PreparedCall` whose ``events`` are the neutral event stream;
- **relayed**: when the customer's API equals ``wire_api``, ``relay`` sends the customer's own body (model
  name mapped) and gives a :class:`RelayedReply` of that API's wire payloads, untouched.

Either raises :class:`aicy.upstream.failures.UpstreamFailure` for a failure another backend could cure;
routing counts those (circuit breakers), not the backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from aicy.domain.channels import Channel
from aicy.domain.models import ModelInfo
from aicy.types import JSON, Event, GenerationRequest, Usage, WireApi


class PreparedCall(Protocol):
    input_tokens: int
    max_output_tokens: int

    def events(self) -> AsyncIterator[Event]: ...

    def usage_so_far(self) -> Usage | None:
        """The backend's own count of what an interrupted call produced; None when it has none."""
        ...


class RelayedReply(Protocol):
    """An upstream reply in the customer's own API: SSE payloads in batches, or one JSON body."""

    def batches(self) -> AsyncIterator[list[JSON]]:
        """Payloads grouped as they arrived (each group goes out to the client in one write)."""
        ...

    async def json(self) -> JSON: ...

    async def close(self) -> None: ...


class Backend(Protocol):
    """``wire_api`` is the OpenAI API the backend relays as is (None: it only takes neutral requests)."""

    name: str
    wire_api: WireApi | None

    def upstream_model(self, model: ModelInfo) -> str:
        """The name the backend knows ``model`` by (shown in ``x-aicy-upstream-model`` and the usage log)."""
        ...

    def check(self, request: GenerationRequest, api: WireApi) -> None:
        """Refuse (an AicyError, a 400) what this backend cannot do with a translated request, before
        anything is reserved or queued; ``api`` names the customer's parameters in the error."""
        ...

    async def prepare(self, request: GenerationRequest, model: ModelInfo) -> PreparedCall: ...

    async def relay(self, body: JSON, *, streaming: bool) -> RelayedReply:
        """Send the customer's body (only when ``wire_api`` is the customer's API)."""
        ...

    async def probe(self) -> None:
        """A cheap check that the backend answers; raises UpstreamFailure when it does not."""
        ...


BackendFactory = Callable[[Channel], Backend]
"""How the composition root turns a configured channel into a backend (serving never picks the class)."""
