"""What the engine is asked to generate, and what it reports back."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

EngineFinish = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class Sampling:
    max_tokens: int
    temperature: float = 0.2
    top_p: float = 0.9
    seed: int | None = None
    stop: tuple[str, ...] = ()
    grammar: str | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: int | None = None  # None: none; n: each token's log-probability and the n most likely tokens


@dataclass(frozen=True, slots=True)
class EngineResult:
    finish: EngineFinish
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class EngineStats:
    """Counters for /health and tests. A job is active from the moment it is handed to the engine (also while
    it waits for a free sequence) until its counts are final."""

    active_jobs: int = 0
    finished_jobs: int = 0
    generated_tokens: int = 0
    prompt_chunks: int = 0  # prompt chunks read (each one ``llama_decode`` call of its own)


@dataclass(slots=True)
class EngineJob:
    """One generation. ``produced`` and ``cached`` are the engine's own counts, final once the job is done
    (also when it was cancelled midway: that is what a cut-off request is billed for)."""

    prompt: list[int]
    sampling: Sampling
    cancelled: threading.Event = field(default_factory=threading.Event)
    produced: int = 0
    cached: int = 0
