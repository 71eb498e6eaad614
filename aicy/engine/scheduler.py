"""Continuous batching: one thread owns the llama context and advances every admitted sequence together.

Each step admits waiting jobs into free sequence slots, then does one of two things: decode the last
sampled token of every generating sequence in one batch, or read the next chunk (``prompt_chunk`` tokens,
32 by default) of one prompt, the one with the fewest tokens left to read (a new short request is not
stuck behind a long prompt; ties go to the older job). While there is work of both kinds, a time share
(``aicy.engine.share``) alternates them: prompt chunks may take 0.6 s for each second of decoding, so a
long prompt never stalls the generating sequences, and a running stream keeps over half its speed. Every
sequence whose logits came out samples its next token with its own sampler chain; its text goes to its
job's event loop at once (with the token's log-probabilities, computed from the raw logits, for a job that
asked for them). A job that ends frees its slot and its KV cells.

Why each prompt chunk gets a ``llama_decode`` call of its own: llama.cpp computes the last token of a
chunk slightly differently when it is the only token of its sequence in a ubatch, and it splits a batch
mixing sequences into ubatches with as many tokens of each. Cut at fixed places (every ``prompt_chunk``
tokens from where the prompt starts to be read) and read alone, a prompt is read exactly as it would be
without other jobs: batching never changes a job's output. When chunks are read depends on the clock and
the other jobs; where they are cut does not. Slots are taken lowest id first: llama.cpp only groups
consecutive sequence ids into one ubatch.

Why 32-token chunks rather than one ``n_batch`` (512) at a time: without flash attention a chunk's
attention grows with the chunk times the position, and measured on two cores small chunks read long prompts
faster per token (at position 5,632: 17.4 ms per token in chunks of 32, 20.7 in chunks of 512; at the start
both 6.8), while one 512-token chunk at such a position holds the cores for seconds. Below 16 tokens the
fixed cost of a call shows (24 ms per token in chunks of 4).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass

from llama_cpp._internals import LlamaModel

from aicy.engine.context import ContextShape, Feed, SequenceContext
from aicy.engine.jobs import EngineFinish, EngineJob, EngineResult, EngineStats
from aicy.engine.logprobs import Logits, ScoredOut, Scorer
from aicy.engine.output import Outlet, TextOut
from aicy.engine.prefix import PrefixCache
from aicy.engine.sampling import SamplerChain
from aicy.engine.share import TimeShare
from aicy.engine.vocab import Vocabulary

PROMPT_CHUNK = 32


@dataclass(eq=False, slots=True)
class Entry:
    job: EngineJob
    outlet: Outlet


@dataclass(eq=False, slots=True)
class Running:
    entry: Entry
    seq_id: int
    sampler: SamplerChain
    text: TextOut
    order: int  # admission order: prompts are read first come, first served
    pos: int = 0  # tokens of this sequence in the KV cache
    next_token: int | None = None  # sampled, not yet decoded
    scored: ScoredOut | None = None  # instead of ``text``, for a job that asked for log-probabilities

    @property
    def job(self) -> EngineJob:
        return self.entry.job


class Scheduler:
    def __init__(
        self,
        model: LlamaModel,
        vocab: Vocabulary,
        shape: ContextShape,
        stats: EngineStats,
        *,
        prefix_cache: bool = True,
        prompt_chunk: int = PROMPT_CHUNK,
    ) -> None:
        if not 1 <= prompt_chunk <= shape.n_batch:
            raise ValueError(f"prompt_chunk must be between 1 and n_batch ({shape.n_batch})")
        self._vocab = vocab
        self._chunk = prompt_chunk
        self._share = TimeShare()
        self._since: float | None = None  # when the last step ended, while the thread is busy
        self._stats = stats
        self._context = SequenceContext(model, shape)
        self.n_ctx_seq = self._context.n_ctx_seq
        self._slots: list[Running | None] = [None] * shape.n_seq_max
        self._prefixes = PrefixCache(shape.n_seq_max, enabled=prefix_cache)
        self._inbox: deque[Entry] = deque()
        self._lock = threading.Condition()
        self._closing = False
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._serve, name="aicy-engine", daemon=True)
        self._thread.start()

    # --- other threads

    def submit(self, job: EngineJob, outlet: Outlet) -> None:
        with self._lock:
            if self._closing:
                raise RuntimeError("the engine is closed")
            self._stats.active_jobs += 1
            self._inbox.append(Entry(job, outlet))
            self._lock.notify()

    def wake(self) -> None:
        """Look at the jobs again (one was cancelled) even if nothing is running."""
        with self._lock:
            self._lock.notify()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join()
        self._context.close()

    # --- the scheduler thread

    def _serve(self) -> None:
        while self._wait_for_work():
            try:
                self._admit()
                self._reap_cancelled()
                if self._running():
                    self._step()
            except Exception as exc:  # a failed decode: every sequence in flight ends with it
                self._fail_running(exc)
        self._fail_running(RuntimeError("the engine was closed"))
        with self._lock:
            left, self._inbox = list(self._inbox), deque()
        for entry in left:
            self._retire(entry, RuntimeError("the engine was closed"))

    def _wait_for_work(self) -> bool:
        with self._lock:
            while not self._closing and not self._inbox and not self._running():
                self._since = None
                self._lock.wait()
            return not self._closing

    def _running(self) -> list[Running]:
        return [seq for seq in self._slots if seq is not None]

    def _admit(self) -> None:
        """Start waiting jobs in free slots, in arrival order; end the cancelled ones without a slot."""
        with self._lock:
            waiting, self._inbox = self._inbox, deque()
        kept: list[Entry] = []
        for entry in waiting:
            job = entry.job
            if job.cancelled.is_set() or job.sampling.max_tokens <= 0:
                finish: EngineFinish = "stop" if job.cancelled.is_set() else "length"
                self._retire(entry, EngineResult(finish, len(job.prompt), 0, 0))
            elif None in self._slots:
                self._start(entry, self._slots.index(None))
            else:
                kept.append(entry)
        with self._lock:
            self._inbox.extendleft(reversed(kept))

    def _start(self, entry: Entry, seq_id: int) -> None:
        sampling = entry.job.sampling
        try:
            scored = None
            if sampling.logprobs is not None:
                scored = ScoredOut(sampling.stop, Scorer(self._vocab, sampling.logprobs))
            sampler = SamplerChain(self._vocab.pointer, self._vocab.size, sampling)
        except ValueError as exc:
            self._retire(entry, exc)
            return
        reuse = self._prefixes.plan(seq_id, entry.job.prompt)
        if reuse.source is not None:
            self._context.copy(reuse.source, seq_id)
        self._context.forget(seq_id, keep=reuse.keep)
        self._prefixes.apply(seq_id, reuse)
        entry.job.cached = reuse.keep
        self._slots[seq_id] = Running(
            entry, seq_id, sampler, TextOut(sampling.stop), next(self._order), pos=reuse.keep, scored=scored
        )

    def _reap_cancelled(self) -> None:
        for seq in self._running():
            if seq.job.cancelled.is_set():
                self._finish(seq, "stop")

    def _step(self) -> None:
        """Read one prompt chunk or decode every generating sequence, as the time share says. A step is
        charged from the end of the one before, so what the thread does between steps counts too."""
        running = self._running()
        tokens = [
            (seq, Feed(seq.seq_id, seq.pos, (token,), logits=True))
            for seq in running
            if (token := seq.next_token) is not None
        ]
        reading = [seq for seq in running if seq.pos < len(seq.job.prompt)]
        if not (tokens and reading):
            self._share.reset()
        started = self._since if self._since is not None else time.perf_counter()
        if reading and (not tokens or self._share.prompt_turn()):
            self._read_chunk(min(reading, key=lambda r: (len(r.job.prompt) - r.pos, r.order)))
            self._since = time.perf_counter()
            self._share.read(self._since - started)
        elif tokens:
            self._decode(tokens)
            self._since = time.perf_counter()
            self._share.decoded(self._since - started)

    def _read_chunk(self, seq: Running) -> None:
        """The next chunk of ``seq``'s prompt: reading began at ``job.cached`` and every chunk but the last
        is ``prompt_chunk`` tokens long, so the cuts do not depend on the other jobs."""
        chunk = seq.job.prompt[seq.pos : seq.pos + self._chunk]
        last = seq.pos + len(chunk) == len(seq.job.prompt)
        self._stats.prompt_chunks += 1
        self._decode([(seq, Feed(seq.seq_id, seq.pos, chunk, logits=last))])

    def _decode(self, plan: list[tuple[Running, Feed]]) -> None:
        outputs = self._context.decode([feed for _, feed in plan])
        for (seq, feed), index in zip(plan, outputs, strict=True):
            seq.pos += len(feed.tokens)
            self._prefixes.held(seq.seq_id).extend(feed.tokens)
            seq.next_token = None
            if index < 0:
                continue
            if seq.scored is None:
                self._advance(seq, self._context.sample(seq.sampler.pointer, index))
            else:  # the raw logits, read before the sampler sees them
                logits = self._context.logits(index)
                self._advance(seq, self._context.sample(seq.sampler.pointer, index), logits)

    def _advance(self, seq: Running, token: int, logits: Logits | None = None) -> None:
        """Deliver a sampled token (with its log-probabilities when ``logits`` are given), or end the
        sequence on it."""
        job = seq.job
        if job.cancelled.is_set() or token in self._vocab.eog:
            self._finish(seq, "stop")
            return
        job.produced += 1
        self._stats.generated_tokens += 1
        piece = self._vocab.piece(token)
        if logits is None:
            text, hit = seq.text.push(piece)
            if text:
                seq.entry.outlet.emit(text)
        else:
            hit = self._push_scored(seq, token, piece, logits)
        if hit:
            self._finish(seq, "stop", flush=False)
        elif job.produced >= job.sampling.max_tokens or seq.pos >= self.n_ctx_seq:
            self._finish(seq, "length")
        else:
            seq.next_token = token

    def _push_scored(self, seq: Running, token: int, piece: bytes, logits: Logits) -> bool:
        scored = seq.scored
        assert scored is not None
        out, hit = scored.push(piece, scored.scorer.score(logits, token, piece))
        if out is not None:
            seq.entry.outlet.emit(out)
        return hit

    def _release(self, seq: Running) -> None:
        """Free the slot; its KV cells stay, for a later prompt that starts the same way."""
        self._slots[seq.seq_id] = None
        seq.sampler.close()

    def _finish(self, seq: Running, finish: EngineFinish, flush: bool = True) -> None:
        self._release(seq)
        if flush:
            rest = seq.text.rest() if seq.scored is None else seq.scored.rest()
            if rest:
                seq.entry.outlet.emit(rest)
        job = seq.job
        self._retire(seq.entry, EngineResult(finish, len(job.prompt), job.cached, job.produced))

    def _fail_running(self, exc: BaseException) -> None:
        """End every running job with ``exc``, and forget every slot's cells (a failed decode may have left
        some behind)."""
        for seq in self._running():
            with contextlib.suppress(Exception):
                self._release(seq)
            self._slots[seq.seq_id] = None
            self._retire(seq.entry, exc)
        for slot in range(len(self._slots)):
            self._prefixes.clear(slot)
            with contextlib.suppress(Exception):
                self._context.forget(slot)

    def _retire(self, entry: Entry, item: EngineResult | BaseException) -> None:
        """Hand over the job's last item; its counts are final from here on."""
        with self._lock:
            self._stats.active_jobs -= 1
            self._stats.finished_jobs += 1
        entry.outlet.emit(item)
        entry.outlet.done.set_result(None)
