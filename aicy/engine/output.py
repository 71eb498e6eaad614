"""A job's way out of the scheduler thread: its text, held back at stop strings, onto its event loop."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from aicy.engine.jobs import EngineResult
from aicy.engine.logprobs import ScoredText
from aicy.engine.stops import StopMatcher

Item = str | ScoredText | EngineResult | BaseException  # text comes as ScoredText to jobs that ask for it


@dataclass(eq=False, slots=True)
class Outlet:
    """Hands items to the job's event loop; ``done`` resolves once the job's counts are final."""

    loop: asyncio.AbstractEventLoop
    put: Callable[[Item], None]
    done: Future[None] = field(default_factory=Future)

    def emit(self, item: Item) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
            self.loop.call_soon_threadsafe(self.put, item)


class TextOut:
    """Token bytes to text: UTF-8 sequences split across tokens are joined, stop strings held back."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = StopMatcher(stops)

    def push(self, piece: bytes) -> tuple[str, bool]:
        """Returns (text safe to emit, whether a stop string was hit)."""
        return self._stops.push(self._decoder.decode(piece))

    def rest(self) -> str:
        """What is still held back, once the generation ended without hitting a stop string."""
        return self._stops.flush() + self._decoder.decode(b"", final=True)
