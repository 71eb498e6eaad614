"""The Backend protocol every model server implements (the embedded engine, OpenAI-compatible upstreams).

``prepare`` does everything that can fail with a clean HTTP error (validation, prompt too long) before any
byte goes to the client; ``PreparedCall.events`` then produces the neutral event stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from aicy.types import Event, GenerationRequest, WireApi

if TYPE_CHECKING:
    from aicy.domain.models import ModelInfo


class PreparedCall(Protocol):
    input_tokens: int
    max_output_tokens: int

    def events(self) -> AsyncIterator[Event]: ...


class Backend(Protocol):
    """``wire_api`` is the OpenAI API an HTTP channel speaks (None for built-in engines)."""

    name: str
    wire_api: WireApi | None

    async def prepare(self, request: GenerationRequest, model: ModelInfo) -> PreparedCall: ...
