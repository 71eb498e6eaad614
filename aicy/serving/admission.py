"""Admission: every backend has a capacity; a request that cannot start waits, fairly between accounts.

Each backend keeps, per account, a first-come queue of waiters, and serves the accounts round-robin: one
account with a hundred waiting requests cannot hold another account's single request behind all of them.
A request that can use several backends waits on all of them and starts on whichever frees up first.
aicy itself never refuses a request for concurrency; only the start deadline ends a wait.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(eq=False, slots=True)
class Waiter:
    account: str
    backends: tuple[str, ...]
    future: asyncio.Future[str]
    since: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Backend:
    capacity: int | None
    in_use: int = 0
    queues: OrderedDict[str, deque[Waiter]] = field(default_factory=OrderedDict)

    @property
    def free(self) -> bool:
        return self.capacity is None or self.in_use < self.capacity

    def waiting(self) -> int:
        return sum(len(q) for q in self.queues.values())


class QueueDeadline(Exception):
    """The request did not start before its start deadline."""


class Admission:
    def __init__(self) -> None:
        self._backends: dict[str, _Backend] = {}

    def set_capacity(self, backend: str, capacity: int | None) -> None:
        state = self._backends.setdefault(backend, _Backend(capacity))
        state.capacity = capacity
        self._grant(backend)

    def _state(self, backend: str) -> _Backend:
        return self._backends.setdefault(backend, _Backend(None))

    def try_acquire(self, backends: Iterable[str]) -> str | None:
        """A slot on the first backend (in the caller's order) that has one free now, without waiting."""
        for name in backends:
            state = self._state(name)
            if state.free and not state.waiting():
                state.in_use += 1
                return name
        return None

    def join(self, account: str, backends: tuple[str, ...]) -> Waiter:
        """Take a free slot, or join the queues of ``backends`` now, in arrival order (no await: a request
        has its place before the server reads the next one, whatever kind of reply it will get)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        waiter = Waiter(account, backends, future)
        now = self.try_acquire(backends)
        if now is not None:
            future.set_result(now)
            return waiter
        for name in backends:
            self._state(name).queues.setdefault(account, deque()).append(waiter)
        return waiter

    async def wait(self, waiter: Waiter, timeout: float) -> str:
        """The slot ``waiter`` was given; the deadline or a cancelled wait leaves the queue at once."""
        if waiter.future.done():
            return waiter.future.result()
        remaining = timeout - (time.monotonic() - waiter.since)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), max(remaining, 0.0))
        except TimeoutError:
            self._abandon(waiter)
            raise QueueDeadline from None
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise

    async def acquire(self, account: str, backends: tuple[str, ...], timeout: float) -> str:
        """Wait for a slot on any of ``backends``; cancelling the wait leaves the queue at once."""
        return await self.wait(self.join(account, backends), timeout)

    def leave(self, waiter: Waiter) -> None:
        """Give up a place whose slot was never used (a slot granted meanwhile goes straight back)."""
        self._abandon(waiter)

    def _abandon(self, waiter: Waiter) -> None:
        """Leave every queue; a slot granted in the same instant goes straight back."""
        self._forget(waiter)
        if waiter.future.done() and not waiter.future.cancelled():
            self.release(waiter.future.result())
        else:
            waiter.future.cancel()

    def release(self, backend: str) -> None:
        state = self._state(backend)
        state.in_use = max(0, state.in_use - 1)
        self._grant(backend)

    def _grant(self, backend: str) -> None:
        """Hand free slots to waiters, one account at a time, in turn."""
        state = self._state(backend)
        while state.free and state.queues:
            account, queue = next(iter(state.queues.items()))
            waiter = queue.popleft()
            if queue:
                state.queues.move_to_end(account)
            else:
                del state.queues[account]
            if waiter.future.done():
                continue
            state.in_use += 1
            waiter.future.set_result(backend)
            self._forget(waiter)

    def _forget(self, waiter: Waiter) -> None:
        for name in waiter.backends:
            state = self._backends.get(name)
            queue = state.queues.get(waiter.account) if state else None
            if state is None or queue is None:
                continue
            try:
                queue.remove(waiter)
            except ValueError:
                continue
            if not queue:
                del state.queues[waiter.account]

    def waiting(self, backend: str) -> int:
        return self._state(backend).waiting()

    def in_use(self, backend: str) -> int:
        return self._state(backend).in_use

    def snapshot(self) -> dict[str, dict[str, int | None]]:
        return {
            name: {"capacity": s.capacity, "in_use": s.in_use, "waiting": s.waiting()}
            for name, s in self._backends.items()
        }
