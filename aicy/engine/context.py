"""The llama.cpp context of the scheduler thread: one KV stream per sequence, one reusable batch buffer.

Each sequence has a KV stream of its own (``kv_unified`` off), so a sequence always has the full
per-request context and its attention never reads another sequence's cells. llama.cpp puts sequences with
consecutive ids in one ubatch, so feeds are decoded in sequence-id order.

Attention is computed as ``Llama`` computes it by default (no flash attention, f16 KV cache): with it a
sequence's logits do not depend on which other sequences share the batch, or where its prompt chunks
were cut, so greedy or seeded output does not depend on the load. (ggml's flash attention picks kernels by
the shape of the batch — split over threads for a lone sequence, tiled for long prompt chunks — which round
differently; with a q8_0 cache it keeps one kernel but reads long prompts two to three times slower.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaContext, LlamaModel
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class ContextShape:
    n_ctx_seq: int  # tokens one sequence may hold: the per-request context window
    n_seq_max: int  # sequences decoded together
    n_batch: int  # tokens per llama_decode call (prompt chunks included)
    n_threads: int


@dataclass(frozen=True, slots=True)
class Feed:
    """Tokens of one sequence for the next decode, starting at ``pos``; ``logits`` asks for the last one's."""

    seq_id: int
    pos: int
    tokens: Sequence[int]
    logits: bool


class DecodeError(RuntimeError):
    pass


class SequenceContext:
    def __init__(self, model: LlamaModel, shape: ContextShape) -> None:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = shape.n_ctx_seq * shape.n_seq_max
        params.n_batch = params.n_ubatch = shape.n_batch
        params.n_seq_max = shape.n_seq_max
        params.n_threads = params.n_threads_batch = shape.n_threads
        params.kv_unified = False
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        self._ctx = LlamaContext(model=model, params=params, verbose=False)
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(self._ctx.ctx))
        self.n_batch = shape.n_batch
        self.n_vocab = model.n_vocab()
        self._batch = llama_cpp.llama_batch_init(shape.n_batch, 0, 1)
        self._open = True

    def decode(self, feeds: Sequence[Feed]) -> list[int]:
        """Decode the feeds in one batch; returns, per feed, the batch index of its logits (or -1)."""
        total = sum(len(feed.tokens) for feed in feeds)
        if not 0 < total <= self.n_batch:
            raise DecodeError(f"a batch of {total} tokens (n_batch={self.n_batch})")
        batch = self._batch
        n = 0
        outputs: list[int] = []
        for feed in feeds:
            for offset, token in enumerate(feed.tokens):
                batch.token[n] = token
                batch.pos[n] = feed.pos + offset
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = feed.seq_id
                batch.logits[n] = 0
                n += 1
            if feed.logits:
                batch.logits[n - 1] = 1
            outputs.append(n - 1 if feed.logits else -1)
        batch.n_tokens = n
        code = llama_cpp.llama_decode(self._ctx.ctx, batch)
        if code != 0:
            raise DecodeError(f"llama_decode returned {code}")
        return outputs

    def sample(self, sampler: llama_cpp.llama_sampler_p, index: int) -> int:
        """Sample (and accept into the sampler's state) the token for the logits at batch ``index``."""
        return int(llama_cpp.llama_sampler_sample(sampler, self._ctx.ctx, index))

    def logits(self, index: int) -> NDArray[np.float32]:
        """A copy of the raw logits at batch ``index`` (llama.cpp's own are valid until the next decode)."""
        pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, index)
        if not pointer:
            raise DecodeError(f"no logits at batch index {index}")
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def forget(self, seq_id: int, keep: int = 0) -> None:
        """Free a sequence's KV cells from position ``keep`` on (all of them by default)."""
        self._ctx.kv_cache_seq_rm(seq_id, keep, -1)

    def copy(self, src: int, dst: int) -> None:
        """Make ``dst`` hold what ``src`` holds. Each sequence has a stream of its own, so llama.cpp copies
        the whole stream (its buffers are copied at the start of the next decode); trim ``dst`` afterwards."""
        self._ctx.kv_cache_seq_cp(src, dst, -1, -1)

    def close(self) -> None:
        if self._open:
            self._open = False
            llama_cpp.llama_batch_free(self._batch)
            self._ctx.close()  # type: ignore[no-untyped-call]
