"""The admission queue: capacity, round-robin fairness between accounts, several backends, leaving."""

from __future__ import annotations

import asyncio

import pytest

from aicy.serving.admission import Admission, QueueDeadline


def run(coro):
    return asyncio.run(coro)


def test_free_slots_are_taken_at_once_and_unlimited_backends_never_wait() -> None:
    admission = Admission()
    admission.set_capacity("one", 1)
    assert admission.try_acquire(["one"]) == "one"
    assert admission.try_acquire(["one"]) is None
    assert all(admission.try_acquire(["open"]) == "open" for _ in range(100))


def test_accounts_are_served_in_turn() -> None:
    async def scenario() -> list[str]:
        admission = Admission()
        admission.set_capacity("b", 1)
        assert admission.try_acquire(["b"]) == "b"
        order: list[str] = []

        async def request(account: str, label: str) -> None:
            await admission.acquire(account, ("b",), timeout=5)
            order.append(label)
            admission.release("b")

        tasks = [asyncio.create_task(request("A", f"A{i}")) for i in range(20)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(request("B", "B0")))
        await asyncio.sleep(0)
        admission.release("b")
        await asyncio.gather(*tasks)
        return order

    order = run(scenario())
    assert order.index("B0") <= 1
    assert [x for x in order if x.startswith("A")] == [f"A{i}" for i in range(20)]


def test_a_request_waits_on_every_candidate_and_takes_the_first_free() -> None:
    async def scenario() -> str:
        admission = Admission()
        for name in ("x", "y"):
            admission.set_capacity(name, 1)
            admission.try_acquire([name])
        waiting = asyncio.create_task(admission.acquire("A", ("x", "y"), timeout=5))
        await asyncio.sleep(0)
        admission.release("y")
        got = await waiting
        assert admission.waiting("x") == 0, "the waiter left the other queue"
        return got

    assert run(scenario()) == "y"


def test_deadline_and_cancellation_leave_the_queue() -> None:
    async def scenario() -> None:
        admission = Admission()
        admission.set_capacity("b", 1)
        admission.try_acquire(["b"])
        with pytest.raises(QueueDeadline):
            await admission.acquire("A", ("b",), timeout=0.05)
        assert admission.waiting("b") == 0
        waiting = asyncio.create_task(admission.acquire("A", ("b",), timeout=5))
        await asyncio.sleep(0)
        assert admission.waiting("b") == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert admission.waiting("b") == 0
        admission.release("b")
        assert admission.in_use("b") == 0

    run(scenario())


def test_a_slot_granted_as_the_waiter_leaves_goes_back() -> None:
    async def scenario() -> None:
        admission = Admission()
        admission.set_capacity("b", 1)
        admission.try_acquire(["b"])
        waiting = asyncio.create_task(admission.acquire("A", ("b",), timeout=5))
        await asyncio.sleep(0)
        admission.release("b")  # grants the slot to the waiter ...
        waiting.cancel()  # ... which is cancelled before it runs again
        try:
            held = await waiting  # it may still win the slot: then it holds it and must give it back
        except asyncio.CancelledError:
            held = None
        assert admission.in_use("b") == (1 if held else 0)
        if held:
            admission.release(held)
        assert admission.in_use("b") == 0 and admission.waiting("b") == 0

    run(scenario())


def test_raising_capacity_admits_waiters() -> None:
    async def scenario() -> None:
        admission = Admission()
        admission.set_capacity("b", 1)
        admission.try_acquire(["b"])
        waiting = asyncio.create_task(admission.acquire("A", ("b",), timeout=5))
        await asyncio.sleep(0)
        admission.set_capacity("b", 2)
        assert await waiting == "b"

    run(scenario())
