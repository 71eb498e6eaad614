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
    """Exactly one of ``translated`` and ``relayed`` is set.

    When the backend reports no usage, aicy counts it (:meth:`UsageTracker.counted`) before the reply ends
    and shows that count where the usage goes: the usage chunk of a Chat stream that asked for it, a whole
    reply's ``usage``, the terminal response of a Responses stream. The settlement bills the same numbers.
    """

    dialect: Dialect
    tracker: UsageTracker
    translated: PreparedCall | None = None
    relayed: RelayedReply | None = None

    async def batches(self) -> AsyncGenerator[list[JSON]]:
        """Payloads grouped as they became available (each group goes out in one write)."""
        dialect, tracker = self.dialect, self.tracker
        if self.relayed is not None:
            last: JSON | None = None
            try:
                async for batch in self.relayed.batches():
                    kept = [payload for payload in batch if dialect.relayed(payload, tracker)]
                    if not kept:
                        continue
                    if tracker.reported is None:
                        for payload in kept:
                            if dialect.terminal(payload) is not None:
                                dialect.relayed_usage(payload, await tracker.counted())
                    last = kept[-1]
                    yield kept
            finally:
                await self.relayed.close()
            if tracker.reported is None:
                extra = dialect.usage_payloads(await tracker.counted(), last)
                if extra:
                    yield extra
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
        if tracker.reported is None:
            encoded = dialect.encode(await tracker.counted())
            if encoded:
                yield encoded
        closing = dialect.closing()
        if closing:
            yield closing

    async def whole(self) -> JSON:
        tracker = self.tracker
        if self.relayed is not None:
            try:
                body = await self.relayed.json()
            finally:
                await self.relayed.close()
            self.dialect.relayed_body(body, tracker)
            if tracker.reported is None:
                self.dialect.relayed_usage(body, await tracker.counted())
            return body
        assert self.translated is not None
        async for event in self.translated.events():
            tracker.event(event)
            self.dialect.encode(event)
        if tracker.reported is None:
            self.dialect.encode(await tracker.counted())
        return self.dialect.collected()
