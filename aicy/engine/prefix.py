"""Prompt prefix reuse: what each sequence slot's KV stream holds, and how much of a new prompt it saves.

A slot keeps its KV cells after its job ends, so the next prompt that starts the same way (the same chat
with one more turn, the same system prompt) only reads what is new. A job starts in the lowest free slot
(llama.cpp batches consecutive sequence ids together); when another slot, running or idle, holds a longer
prefix of the prompt, its stream is copied over first if that saves enough tokens to pay for the copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

COPY_WORTH_TOKENS = 32  # reading this many prompt tokens costs about what copying a KV stream costs


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class Reuse:
    """Start a prompt at ``keep`` in its slot, after copying the stream of ``source`` (if not None)."""

    keep: int
    source: int | None = None


class PrefixCache:
    def __init__(self, slots: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self._held: list[list[int]] = [[] for _ in range(slots)]

    def held(self, slot: int) -> list[int]:
        """The tokens whose KV the slot holds, at positions 0, 1, …; the scheduler appends what it decodes."""
        return self._held[slot]

    def plan(self, slot: int, prompt: Sequence[int]) -> Reuse:
        """How to start ``prompt`` in ``slot``; at least its last token is read again (for the logits)."""
        if not self.enabled:
            return Reuse(0)
        limit = len(prompt) - 1
        own = min(common_prefix(self._held[slot], prompt), limit)
        best, source = own, None
        for other, tokens in enumerate(self._held):
            if other != slot and (shared := min(common_prefix(tokens, prompt), limit)) > best:
                best, source = shared, other
        if source is not None and best - own >= COPY_WORTH_TOKENS:
            return Reuse(best, source)
        return Reuse(own)

    def apply(self, slot: int, reuse: Reuse) -> None:
        """Record that the slot now holds the first ``reuse.keep`` tokens (of its own or the source's)."""
        tokens = self._held[reuse.source] if reuse.source is not None else self._held[slot]
        self._held[slot] = tokens[: reuse.keep]

    def clear(self, slot: int) -> None:
        self._held[slot] = []
