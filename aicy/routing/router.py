"""Which backends may serve a model, best first: priority, then weight, then health and affinity."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterable

from aicy.domain.models import ModelInfo
from aicy.routing.catalog import Catalog
from aicy.routing.health import Breaker
from aicy.types import WireApi
from aicy.upstream.base import Backend

AFFINITY_ENTRIES = 50_000


class Router:
    def __init__(
        self,
        catalog: Catalog,
        rng: random.Random | None = None,
        breaker_failures: int = 3,
        breaker_cooldown: float = 10.0,
    ) -> None:
        self.catalog = catalog
        self._breaker_failures = breaker_failures
        self._breaker_cooldown = breaker_cooldown
        self._rng = rng or random.Random()
        self._local: dict[str, Backend] = {}
        self._local_models: dict[str, ModelInfo] = {}
        self._channels: dict[str, list[ChannelEntry]] = {}
        self._breakers: dict[str, Breaker] = {}
        self._affinity: OrderedDict[str, str] = OrderedDict()

    def register_local(self, model: ModelInfo, backend: Backend) -> None:
        """A built-in backend (the embedded engine) for one model."""
        self.catalog.add(model)
        self._local[model.id] = backend
        self._local_models[model.id] = model

    def set_catalog(self, models: Iterable[ModelInfo]) -> None:
        """Replace the catalog. A stored entry for a local backend's model (say, to give the embedded model
        a price) overrides its built-in description; without one, the built-in description stays."""
        stored = list(models)
        ids = {m.id for m in stored}
        self.catalog = Catalog([*stored, *(m for m in self._local_models.values() if m.id not in ids)])

    def breaker(self, channel: str) -> Breaker:
        """The breaker of a channel survives reloads of its configuration."""
        found = self._breakers.get(channel)
        if found is None:
            found = self._breakers[channel] = Breaker(self._breaker_failures, self._breaker_cooldown)
        return found

    def set_channels(self, entries: Iterable[ChannelEntry]) -> None:
        by_model: dict[str, list[ChannelEntry]] = {}
        for entry in entries:
            for model_id in entry.models:
                by_model.setdefault(model_id, []).append(entry)
        self._channels = by_model

    def _healthy(self, model_id: str) -> list[ChannelEntry]:
        """Closed breakers; when none is closed, half-open ones get a trial rather than failing outright."""
        entries = self._channels.get(model_id, ())
        closed = [e for e in entries if e.breaker.state == "closed"]
        return closed or [e for e in entries if e.breaker.state == "half_open"]

    def probe_due(self) -> list[ChannelEntry]:
        """Channels out of rotation whose cooldown has passed: the prober checks them."""
        seen: dict[str, ChannelEntry] = {}
        for entries in self._channels.values():
            for e in entries:
                if e.breaker.state == "half_open":
                    seen[e.name] = e
        return list(seen.values())

    def serves(self, model_id: str) -> bool:
        return model_id in self._local or bool(self._healthy(model_id))

    def configured(self, model_id: str) -> bool:
        """A backend is set up for the model, whether or not it is in rotation right now."""
        return model_id in self._local or bool(self._channels.get(model_id))

    def record_success(self, backend: str) -> None:
        """The backend answered (a refusal of the request itself counts: the channel works)."""
        breaker = self._breakers.get(backend)
        if breaker is not None:
            breaker.record_success()

    def record_failure(self, backend: str, reason: str, *, fatal: bool = False) -> None:
        """The backend failed in a way another may not (``fatal``: it refused our key)."""
        breaker = self._breakers.get(backend)
        if breaker is not None:
            breaker.record_failure(reason, fatal=fatal)

    def last_error(self, backend: str) -> str | None:
        breaker = self._breakers.get(backend)
        return breaker.last_error if breaker is not None else None

    def servable(self) -> list[ModelInfo]:
        return [m for m in self.catalog.all() if m.id in self._local or self._healthy(m.id)]

    def candidates(
        self, model_id: str, prefer: str | None = None, api: WireApi | None = None
    ) -> list[Backend]:
        """Local backend, or healthy channels: highest priority first; within a priority, channels that speak
        the client's own API first (relayed as is rather than translated), then weighted random."""
        if model_id in self._local:
            return [self._local[model_id]]
        entries = self._healthy(model_id)
        ordered: list[ChannelEntry] = []
        for priority in sorted({e.priority for e in entries}, reverse=True):
            same = [e for e in entries if e.priority == priority]
            ordered += self._weighted_order([e for e in same if e.backend.wire_api == api])
            ordered += self._weighted_order([e for e in same if e.backend.wire_api != api])
        if prefer:
            ordered.sort(key=lambda e: e.name != prefer)
        return [e.backend for e in ordered]

    def _weighted_order(self, entries: list[ChannelEntry]) -> list[ChannelEntry]:
        if len(entries) < 2:
            return entries
        pool, out = list(entries), []
        while pool:
            pick = self._rng.choices(pool, weights=[max(e.weight, 0) or 1e-9 for e in pool])[0]
            pool.remove(pick)
            out.append(pick)
        return out

    def remember(self, key: str | None, channel: str) -> None:
        """Conversation affinity (``prompt_cache_key``): later turns go back to the same channel."""
        if not key:
            return
        self._affinity[key] = channel
        self._affinity.move_to_end(key)
        while len(self._affinity) > AFFINITY_ENTRIES:
            self._affinity.popitem(last=False)

    def preferred(self, key: str | None) -> str | None:
        return self._affinity.get(key) if key else None


class ChannelEntry:
    """A configured channel as the router sees it."""

    __slots__ = ("backend", "breaker", "models", "name", "priority", "weight")

    def __init__(
        self, backend: Backend, models: Iterable[str], priority: int, weight: int, breaker: Breaker
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.models = tuple(models)
        self.priority = priority
        self.weight = weight
        self.breaker = breaker
