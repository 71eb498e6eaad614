"""Where a reply's payloads come from: a backend's neutral events encoded by the dialect, or an upstream of
the customer's own API relayed as is. Either way serving gets the same two things: the stream of wire
payloads in batches, or the whole reply object."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from aicy.serving.dialects import Dialect
from aicy.serving.metering import UsageTracker
from aicy.types import JSON
from aicy.upstream.base import PreparedCall, RelayedReply


@dataclass(slots=True)
class Source:
    """Exactly one of ``translated`` and ``relayed`` is set."""

    dialect: Dialect
    tracker: UsageTracker
    translated: PreparedCall | None = None
    relayed: RelayedReply | None = None

    async def batches(self) -> AsyncGenerator[list[JSON]]:
        """Payloads grouped as they became available (each group goes out in one write)."""
        dialect, tracker = self.dialect, self.tracker
        if self.relayed is not None:
            try:
                async for batch in self.relayed.batches():
                    kept = [payload for payload in batch if dialect.relayed(payload, tracker)]
                    if kept:
                        yield kept
            finally:
                await self.relayed.close()
            return
        assert self.translated is not None
        opening = dialect.opening()
        if opening:
            yield opening
        async for event in self.translated.events():
            tracker.event(event)
            encoded = dialect.encode(event)
            if encoded:
                yield encoded
        closing = dialect.closing()
        if closing:
            yield closing

    async def whole(self) -> JSON:
        if self.relayed is not None:
            try:
                body = await self.relayed.json()
            finally:
                await self.relayed.close()
            self.dialect.relayed_body(body, self.tracker)
            return body
        assert self.translated is not None
        async for event in self.translated.events():
            self.tracker.event(event)
            self.dialect.encode(event)
        return self.dialect.collected()
