"""A sequence's own llama.cpp sampler chain, built as ``Llama.generate`` builds it for aicy's settings.

The chain keeps the sequence's sampling state (penalty history, grammar position, random generator), so
sequences decoded in one batch never share it: the same seed and prompt give the same text, alone or not.
"""

from __future__ import annotations

import llama_cpp

from aicy.engine.jobs import Sampling

PENALTY_WINDOW = 64  # generated tokens the presence/frequency penalties look back on (llama-cpp's default)
GRAMMAR_ROOT = b"root"


class GrammarError(ValueError):
    pass


def grammar_sampler(vocab: llama_cpp.llama_vocab_p, gbnf: str) -> llama_cpp.llama_sampler_p:
    """Parse a GBNF grammar into a fresh grammar sampler; raises GrammarError if llama.cpp rejects it."""
    sampler: llama_cpp.llama_sampler_p = llama_cpp.llama_sampler_init_grammar(
        vocab, gbnf.encode("utf-8"), GRAMMAR_ROOT
    )
    if not sampler:
        raise GrammarError("llama.cpp could not parse the grammar")
    return sampler


class SamplerChain:
    def __init__(self, vocab: llama_cpp.llama_vocab_p, n_vocab: int, sampling: Sampling) -> None:
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        self.pointer: llama_cpp.llama_sampler_p = llama_cpp.llama_sampler_chain_init(params)
        self._open = True
        try:
            self._build(vocab, n_vocab, sampling)
        except BaseException:
            self.close()
            raise

    def _add(self, sampler: llama_cpp.llama_sampler_p) -> None:
        llama_cpp.llama_sampler_chain_add(self.pointer, sampler)  # the chain owns it from now on

    def _build(self, vocab: llama_cpp.llama_vocab_p, n_vocab: int, s: Sampling) -> None:
        if s.presence_penalty or s.frequency_penalty:
            self._add(
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab, PENALTY_WINDOW, 1.0, s.frequency_penalty, s.presence_penalty
                )
            )
        if s.grammar:
            self._add(grammar_sampler(vocab, s.grammar))
        seed = s.seed if s.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED  # the default draws a seed
        if s.temperature == 0:
            self._add(llama_cpp.llama_sampler_init_greedy())
            return
        if s.temperature > 0:
            self._add(llama_cpp.llama_sampler_init_top_p(s.top_p, 1))
            self._add(llama_cpp.llama_sampler_init_temp(s.temperature))
        self._add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def close(self) -> None:
        if self._open:
            self._open = False
            llama_cpp.llama_sampler_free(self.pointer)
