"""One llama.cpp model, run on a dedicated worker thread; results stream back to the event loop.

A job is tokenised on the caller's side (so the prompt size is known before anything is admitted or
reserved), then decoded on the single worker thread, which owns the llama context. Cancelling a job (a
client that went away) is seen by the worker before the next token.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import threading
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_grammar import LlamaGrammar

from aicy.engine.stops import StopMatcher
from aicy.engine.template import ChatTemplate

EngineFinish = Literal["stop", "length"]
_RANDOM_SEED = 0xFFFFFFFF
_GRAMMAR_CACHE_SIZE = 64


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


@dataclass(frozen=True, slots=True)
class EngineResult:
    finish: EngineFinish
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class EngineStats:
    """Counters for /health and tests; written only by the worker thread."""

    active_jobs: int = 0
    finished_jobs: int = 0
    generated_tokens: int = 0


@dataclass(slots=True)
class EngineJob:
    """One generation. ``produced`` and ``cached`` are the engine's own counts, final once the job is done
    (also when it was cancelled midway: that is what a cut-off request is billed for)."""

    prompt: list[int]
    sampling: Sampling
    cancelled: threading.Event = field(default_factory=threading.Event)
    produced: int = 0
    cached: int = 0


class LlamaEngine:
    def __init__(self, model_path: Path, n_ctx: int, n_threads: int) -> None:
        self.model_path = model_path
        self.llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_batch=512,
            verbose=False,
        )
        self.n_ctx = n_ctx
        meta = self.llm.metadata
        self.template = ChatTemplate(
            meta["tokenizer.chat_template"],
            bos_token=self._token_text(self.llm.token_bos()),
            eos_token=self._token_text(self.llm.token_eos()),
        )
        vocab = self.llm._model.vocab
        self._eog = {t for t in range(self.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aicy-engine")
        self._grammars: dict[str, LlamaGrammar] = {}
        self.stats = EngineStats()

    def _token_text(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        self.llm.close()

    def tokenize_chat(self, turns: list[dict[str, Any]]) -> list[int]:
        prompt = self.template.render(turns)
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def grammar(self, gbnf: str) -> LlamaGrammar:
        """Compile (once) a GBNF grammar; the compiled object holds no per-generation state."""
        cached = self._grammars.get(gbnf)
        if cached is None:
            if len(self._grammars) >= _GRAMMAR_CACHE_SIZE:
                self._grammars.pop(next(iter(self._grammars)))
            cached = self._grammars[gbnf] = LlamaGrammar.from_string(gbnf, verbose=False)
        return cached

    async def run(self, job: EngineJob) -> AsyncGenerator[str | EngineResult, None]:
        """Yield text pieces, then one EngineResult. Closing the iterator cancels the job."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | EngineResult | BaseException] = asyncio.Queue()

        def emit(item: str | EngineResult | BaseException) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        future = loop.run_in_executor(self._worker, self._decode, job, emit)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, EngineResult):
                    break
            await future
        finally:
            job.cancelled.set()
            with contextlib.suppress(BaseException):
                await asyncio.shield(future)  # the counts are final only when the worker has let go

    def _cached_prefix(self, prompt: list[int]) -> int:
        """How many prompt tokens the KV cache already holds (the same rule ``Llama.generate`` reuses)."""
        held = self.llm.n_tokens
        if held == 0:
            return 0
        prefix = 0
        for a, b in zip(self.llm.input_ids[:held], prompt, strict=False):
            if a != b:
                break
            prefix += 1
        return prefix - 1 if prefix == len(prompt) else prefix

    def _decode(self, job: EngineJob, emit: Any) -> None:
        self.stats.active_jobs += 1
        try:
            emit(self._decode_tokens(job, emit))
        except BaseException as exc:  # handed to the event loop, which re-raises it
            emit(exc)
        finally:
            self.stats.active_jobs -= 1
            self.stats.finished_jobs += 1

    def _decode_tokens(self, job: EngineJob, emit: Any) -> EngineResult:
        s = job.sampling
        if job.cancelled.is_set():
            return EngineResult("stop", len(job.prompt), 0, 0)
        cached = job.cached = self._cached_prefix(job.prompt)
        self.llm.set_seed(s.seed if s.seed is not None else _RANDOM_SEED)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopMatcher(s.stop)
        produced = 0
        hit = False
        finish: EngineFinish = "length"
        if s.max_tokens <= 0:
            return EngineResult(finish, len(job.prompt), cached, 0)
        tokens = self.llm.generate(
            job.prompt,
            top_k=0,
            top_p=s.top_p,
            min_p=0.0,
            temp=s.temperature,
            repeat_penalty=1.0,
            presence_penalty=s.presence_penalty,
            frequency_penalty=s.frequency_penalty,
            grammar=self.grammar(s.grammar) if s.grammar else None,
        )
        try:
            for token in tokens:
                if job.cancelled.is_set():
                    finish = "stop"
                    break
                if token in self._eog:
                    finish = "stop"
                    break
                produced += 1
                job.produced = produced
                self.stats.generated_tokens += 1
                text, hit = stops.push(decoder.decode(self.llm.detokenize([token])))
                if text:
                    emit(text)
                if hit:
                    finish = "stop"
                    break
                if produced >= s.max_tokens:
                    break
        finally:
            tokens.close()
        if not hit:
            rest = stops.flush() + decoder.decode(b"", final=True)
            if rest:
                emit(rest)
        return EngineResult(finish, len(job.prompt), cached, produced)
