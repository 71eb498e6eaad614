"""Log-probabilities of generated tokens, for the jobs that ask for them (other jobs never come here).

A token's log-probability is that of the model's own distribution at its step: the log-softmax of the raw
logits, before temperature, top-p, penalties or a grammar shape what is sampled (what OpenAI reports). The
entries travel with the text they make up: a token's entry goes out with the text that completes it, so
entries held back with text (a possible stop string, part of a UTF-8 character) wait with it; a token
that is only part of a character goes out with the token that completes the character.
"""

from __future__ import annotations

import codecs
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aicy.engine.stops import StopMatcher
from aicy.engine.vocab import Vocabulary
from aicy.types import TokenLogprob, TopLogprob

MAX_TOP_LOGPROBS = 20

Logits = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ScoredText:
    """Text with the entries of the tokens that make it up (either may be empty, not both)."""

    text: str
    logprobs: tuple[TokenLogprob, ...]


def log_normalizer(logits: Logits) -> float:
    """``log(sum(exp(logits)))``: a token's log-probability is its logit minus this (log-softmax). The
    exponentials are taken in single precision (a few hundred microseconds for a 49k vocabulary), summed
    in double."""
    peak = float(logits.max())
    return peak + math.log(float(np.exp(logits - peak).sum(dtype=np.float64)))


def top_tokens(logits: Logits, count: int) -> list[int]:
    """The ``count`` most likely token ids, most likely first (ties: the lower id first)."""
    size = len(logits)
    count = min(count, size)
    if count <= 0:
        return []
    ids = np.argpartition(logits, size - count)[size - count :]
    order = np.lexsort((ids, -logits[ids]))
    return [int(i) for i in ids[order]]


def token_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


class Scorer:
    """Entries for one job: the sampled token's log-probability and its ``top`` most likely tokens."""

    def __init__(self, vocab: Vocabulary, top: int) -> None:
        if not 0 <= top <= MAX_TOP_LOGPROBS:
            raise ValueError(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")
        self._vocab = vocab
        self._top = top

    def score(self, logits: Logits, token: int, piece: bytes) -> TokenLogprob:
        """``piece`` is what the token added to the text; alternatives show control tokens by name."""
        normalizer = log_normalizer(logits)
        top = tuple(
            TopLogprob(token_text(shown), float(logits[other]) - normalizer, shown)
            for other in top_tokens(logits, self._top)
            for shown in (self._vocab.shown(other),)
        )
        return TokenLogprob(token_text(piece), float(logits[token]) - normalizer, piece, top)


class ScoredOut:
    """What ``TextOut`` does (UTF-8 joined, stop strings held back), with each token's entry kept until
    the text it makes up goes out."""

    def __init__(self, stops: tuple[str, ...], scorer: Scorer) -> None:
        self.scorer = scorer
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = StopMatcher(stops)
        self._pending: deque[tuple[int, int, TokenLogprob]] = deque()  # (first char, end char, entry)
        self._decoded = 0  # characters decoded so far
        self._emitted = 0  # characters gone out

    def push(self, piece: bytes, entry: TokenLogprob) -> tuple[ScoredText | None, bool]:
        """Returns (text and entries safe to emit, whether a stop string was hit)."""
        chars = self._decoder.decode(piece)
        start = self._decoded
        self._decoded += len(chars)
        self._pending.append((start, self._decoded, entry))
        text, hit = self._stops.push(chars)
        self._emitted += len(text)
        if hit:  # the text ends at the stop string: the tokens that began before it made it up
            entries = tuple(e for first, _, e in self._pending if first < self._emitted)
            self._pending.clear()
        else:
            entries = self._release()
        return (ScoredText(text, entries) if text or entries else None), hit

    def rest(self) -> ScoredText | None:
        """What is still held back, once the generation ended without hitting a stop string."""
        text = self._stops.flush() + self._decoder.decode(b"", final=True)
        self._emitted += len(text)
        entries = tuple(e for _, _, e in self._pending)
        self._pending.clear()
        return ScoredText(text, entries) if text or entries else None

    def _release(self) -> tuple[TokenLogprob, ...]:
        """Entries whose text has gone out; one that added no character yet (part of a UTF-8 character)
        waits for the token that completes it."""
        last = -1
        for i, (first, end, _) in enumerate(self._pending):
            if end > self._emitted:
                break
            if end > first:
                last = i
        return tuple(self._pending.popleft()[2] for _ in range(last + 1))
