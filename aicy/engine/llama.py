"""One llama.cpp model serving several generations at once; results stream back to the event loop.

A job is tokenised on the caller's side (so the prompt size is known before anything is admitted or
reserved), then decoded by the scheduler thread, which owns the llama context and batches every running
job into each decode step (see ``aicy.engine.scheduler``). Cancelling a job (a client that went away) is seen
by the scheduler before the job's next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp._internals import LlamaModel

from aicy.engine.context import ContextShape
from aicy.engine.jobs import EngineFinish, EngineJob, EngineResult, EngineStats, Sampling
from aicy.engine.logprobs import MAX_TOP_LOGPROBS, ScoredText
from aicy.engine.output import Item, Outlet
from aicy.engine.sampling import grammar_sampler
from aicy.engine.scheduler import PROMPT_CHUNK, Scheduler
from aicy.engine.template import ChatTemplate
from aicy.engine.vocab import Vocabulary

__all__ = [
    "EngineFinish",
    "EngineJob",
    "EngineResult",
    "EngineStats",
    "LlamaEngine",
    "Sampling",
    "ScoredText",
]

_GRAMMAR_CACHE_SIZE = 64


def load_model(model_path: Path) -> LlamaModel:
    """Load as ``llama_cpp.Llama`` does by default: memory-mapped, CPU only, llama.cpp's logs off."""
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # what ``Llama(verbose=False)`` does
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = 0
    params.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP
    return LlamaModel(path_model=str(model_path), params=params, verbose=False)


class LlamaEngine:
    """``n_ctx`` is the context of one request; the engine runs up to ``n_seq_max`` requests at once, each in
    a KV stream of ``n_ctx`` tokens (memory grows with both), and queues the rest in arrival order. With
    ``prefix_cache`` a prompt that starts as an earlier one did (in any slot) reads only what is new. Prompts
    are read ``prompt_chunk`` tokens at a time, taking turns with the generating requests."""

    def __init__(
        self,
        model_path: Path,
        n_ctx: int,
        n_threads: int,
        *,
        n_seq_max: int = 1,
        n_batch: int = 512,
        prefix_cache: bool = True,
        prompt_chunk: int = PROMPT_CHUNK,
    ) -> None:
        if not 1 <= n_seq_max <= n_batch:
            raise ValueError(f"n_seq_max must be between 1 and n_batch ({n_batch})")
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_seq_max = n_seq_max
        self._model = load_model(model_path)
        try:
            self.vocab = Vocabulary(self._model)
            self.template = ChatTemplate(
                self._model.metadata()["tokenizer.chat_template"],
                bos_token=self.vocab.token_text(self._model.token_bos()),
                eos_token=self.vocab.token_text(self._model.token_eos()),
            )
            self.stats = EngineStats()
            self._grammars: dict[str, None] = {}  # texts llama.cpp parsed, oldest first
            shape = ContextShape(n_ctx_seq=n_ctx, n_seq_max=n_seq_max, n_batch=n_batch, n_threads=n_threads)
            self._scheduler = Scheduler(
                self._model,
                self.vocab,
                shape,
                self.stats,
                prefix_cache=prefix_cache,
                prompt_chunk=prompt_chunk,
            )
        except BaseException:
            self._model.close()  # type: ignore[no-untyped-call]
            raise

    def close(self) -> None:
        self._scheduler.close()
        self._model.close()  # type: ignore[no-untyped-call]

    def tokenize_chat(self, turns: list[dict[str, Any]]) -> list[int]:
        return self.vocab.tokenize(self.template.render(turns))

    def check_grammar(self, gbnf: str) -> None:
        """Check (once per text) that llama.cpp parses a GBNF grammar; raises ValueError if it does not.

        Each job gets its own grammar sampler (it holds the job's position in the grammar); this only
        refuses a bad grammar before the job is queued."""
        if gbnf in self._grammars:
            return
        llama_cpp.llama_sampler_free(grammar_sampler(self.vocab.pointer, gbnf))
        if len(self._grammars) >= _GRAMMAR_CACHE_SIZE:
            self._grammars.pop(next(iter(self._grammars)))
        self._grammars[gbnf] = None

    def _check(self, job: EngineJob) -> None:
        if not 0 < len(job.prompt) <= self.n_ctx:
            raise ValueError(f"a prompt of {len(job.prompt)} tokens does not fit a context of {self.n_ctx}")
        if job.sampling.grammar:
            self.check_grammar(job.sampling.grammar)
        top = job.sampling.logprobs
        if top is not None and not 0 <= top <= MAX_TOP_LOGPROBS:
            raise ValueError(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")

    async def run(self, job: EngineJob) -> AsyncGenerator[str | ScoredText | EngineResult, None]:
        """Yield text pieces (ScoredText when the job asked for log-probabilities), then one EngineResult.
        Closing the iterator cancels the job."""
        self._check(job)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Item] = asyncio.Queue()
        outlet = Outlet(loop, queue.put_nowait)
        self._scheduler.submit(job, outlet)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, EngineResult):
                    break
        finally:
            job.cancelled.set()
            self._scheduler.wake()
            with contextlib.suppress(BaseException):
                await asyncio.shield(asyncio.wrap_future(outlet.done))  # counts are final once it is done
