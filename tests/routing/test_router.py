"""Routing rules: priority, weight, health, affinity; and the circuit breaker's states."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from aicy.domain.models import ModelInfo
from aicy.routing.catalog import Catalog
from aicy.routing.health import Breaker
from aicy.routing.router import ChannelEntry, Router
from aicy.types import WireApi


@dataclass
class FakeBackend:
    name: str
    wire_api: WireApi | None = "chat"

    async def prepare(self, request, model):  # pragma: no cover - routing never calls it
        raise NotImplementedError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _router(*channels: tuple[str, int, int], clock: Clock | None = None) -> Router:
    router = Router(Catalog([ModelInfo("m", 100, 10)]), rng=random.Random(7))
    entries = []
    for name, priority, weight in channels:
        breaker = router.breaker(name)
        if clock is not None:
            breaker.clock = clock
        entries.append(ChannelEntry(FakeBackend(name), ["m"], priority, weight, breaker))
    router.set_channels(entries)
    return router


def _names(router: Router, prefer: str | None = None) -> list[str]:
    return [b.name for b in router.candidates("m", prefer)]


def test_higher_priority_comes_first() -> None:
    router = _router(("low", 0, 100), ("high", 5, 1))
    assert _names(router) == ["high", "low"]


def test_weights_share_traffic() -> None:
    router = _router(("a", 0, 3), ("b", 0, 1))
    firsts = Counter(_names(router)[0] for _ in range(4000))
    assert 0.70 < firsts["a"] / 4000 < 0.80


def test_open_breaker_leaves_rotation_and_half_open_is_a_last_resort() -> None:
    clock = Clock()
    router = _router(("a", 5, 1), ("b", 0, 1), clock=clock)
    router.breaker("a").record_failure("401", fatal=True)
    assert _names(router) == ["b"]
    router.breaker("b").record_failure("401", fatal=True)
    assert _names(router) == []
    assert [m.id for m in router.servable()] == []
    clock.now += 60
    assert sorted(_names(router)) == ["a", "b"]


def test_affinity_prefers_the_channel_that_served_the_conversation() -> None:
    router = _router(("a", 0, 1), ("b", 0, 1))
    router.remember("thread-1", "b")
    assert all(_names(router, router.preferred("thread-1"))[0] == "b" for _ in range(50))
    assert router.preferred("unknown") is None


def test_breaker_opens_after_threshold_and_backs_off() -> None:
    clock = Clock()
    breaker = Breaker(failure_threshold=3, base_cooldown=10, max_cooldown=25, clock=clock)
    breaker.record_failure("500")
    breaker.record_failure("500")
    assert breaker.state == "closed"
    breaker.record_failure("500")
    assert breaker.state == "open"
    clock.now += 10
    assert breaker.state == "half_open"
    breaker.record_failure("500 again")
    assert breaker.state == "open" and breaker.cooldown == 20
    breaker.record_failure("500 again")
    assert breaker.cooldown == 25
    clock.now += 25
    breaker.record_success()
    assert breaker.state == "closed" and breaker.failures == 0


def test_channels_of_the_clients_own_api_come_first_within_a_priority() -> None:
    router = Router(Catalog([ModelInfo("m", 100, 10)]), rng=random.Random(3))
    entries = [
        ChannelEntry(FakeBackend("chat-a", "chat"), ["m"], 0, 5, router.breaker("chat-a")),
        ChannelEntry(FakeBackend("resp-b", "responses"), ["m"], 0, 1, router.breaker("resp-b")),
        ChannelEntry(FakeBackend("resp-top", "responses"), ["m"], 9, 1, router.breaker("resp-top")),
    ]
    router.set_channels(entries)
    router.breaker("resp-top").record_failure("401", fatal=True)
    assert [b.name for b in router.candidates("m", api="responses")] == ["resp-b", "chat-a"]
    assert [b.name for b in router.candidates("m", api="chat")] == ["chat-a", "resp-b"]
