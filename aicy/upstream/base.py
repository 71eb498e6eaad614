"""The Backend protocol every model server implements (the embedded engine, OpenAI-compatible upstreams).

``prepare`` does everything that can fail with a clean HTTP error (validation, prompt too long) before any
byte goes to the client; ``PreparedCall.events`` then produces the neutral event stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from aicy.types import Event, GenerationRequest

if TYPE_CHECKING:
    from aicy.routing.catalog import ModelInfo


class PreparedCall(Protocol):
    input_tokens: int
    max_output_tokens: int

    def events(self) -> AsyncIterator[Event]: ...


class Backend(Protocol):
    name: str

    async def prepare(self, request: GenerationRequest, model: ModelInfo) -> PreparedCall: ...
