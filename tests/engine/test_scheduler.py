"""A long prompt is read in chunks that take turns with the generating sequences: nobody waits for all of it.

The scheduler is driven directly, with an outlet that notes, on the scheduler thread, how many prompt chunks
had been read when each piece of text came out: the order of events, not the clock.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from llama_cpp._internals import LlamaModel

from aicy.engine.context import ContextShape
from aicy.engine.jobs import EngineJob, EngineResult, EngineStats, Sampling
from aicy.engine.llama import load_model
from aicy.engine.model_file import default_model_path
from aicy.engine.output import Item, Outlet
from aicy.engine.scheduler import Scheduler
from aicy.engine.vocab import Vocabulary

CHUNK = 32
COUNTING = ", ".join(str(i) for i in range(1, 40)) + ","  # greedy decoding goes on counting
LONG = "Summarise this list. " + " ".join(f"item {i} is blue;" for i in range(100))
SHORT = "The capital of France is"


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaModel]:
    model = load_model(default_model_path())
    yield model
    model.close()  # type: ignore[no-untyped-call]


@dataclass(eq=False, slots=True)
class Traced(Outlet):
    """Notes ``(name, prompt chunks read so far)`` for every item, when the scheduler hands it over."""

    name: str = ""
    stats: EngineStats = field(default_factory=EngineStats)
    trace: list[tuple[str, int]] = field(default_factory=list)

    def emit(self, item: Item) -> None:
        if isinstance(item, str):
            self.trace.append((self.name, self.stats.prompt_chunks))
        super(Traced, self).emit(item)


@dataclass
class Bench:
    scheduler: Scheduler
    vocab: Vocabulary
    stats: EngineStats
    trace: list[tuple[str, int]]

    def job(self, text: str, max_tokens: int) -> EngineJob:
        return EngineJob(self.vocab.tokenize(text), Sampling(max_tokens=max_tokens, temperature=0.0))

    def start(self, name: str, job: EngineJob) -> asyncio.Queue[Item]:
        queue: asyncio.Queue[Item] = asyncio.Queue()
        outlet = Traced(asyncio.get_running_loop(), queue.put_nowait, name=name, stats=self.stats)
        outlet.trace = self.trace
        self.scheduler.submit(job, outlet)
        return queue


async def drain(queue: asyncio.Queue[Item]) -> tuple[str, EngineResult]:
    pieces: list[str] = []
    while True:
        item = await queue.get()
        if isinstance(item, EngineResult):
            return "".join(pieces), item
        assert isinstance(item, str), item
        pieces.append(item)


async def pieces_seen(queue: asyncio.Queue[Item], count: int) -> None:
    for _ in range(count):
        assert isinstance(await queue.get(), str)


@pytest.fixture
def bench(model: LlamaModel) -> Iterator[Bench]:
    stats = EngineStats()
    shape = ContextShape(n_ctx_seq=1024, n_seq_max=3, n_batch=512, n_threads=1)
    scheduler = Scheduler(model, Vocabulary(model), shape, stats, prefix_cache=False, prompt_chunk=CHUNK)
    yield Bench(scheduler, Vocabulary(model), stats, [])
    scheduler.close()


def test_a_running_stream_gets_tokens_between_every_two_chunks_of_a_long_prompt(bench: Bench) -> None:
    long_job, short_job = bench.job(LONG, 4), bench.job(SHORT, 6)
    long_chunks = math.ceil(len(long_job.prompt) / CHUNK)

    async def scenario() -> tuple[int, tuple[str, EngineResult], tuple[str, EngineResult]]:
        stream_job = bench.job(COUNTING, 1500)
        stream = bench.start("stream", stream_job)
        await pieces_seen(stream, 3)
        before = bench.stats.prompt_chunks
        long = bench.start("long", long_job)
        while bench.stats.prompt_chunks < before + 3:  # the long prompt is being read
            await asyncio.sleep(0.01)
        short = asyncio.create_task(drain(bench.start("short", short_job)))
        long_done = await drain(long)
        short_done = await short
        stream_job.cancelled.set()
        bench.scheduler.wake()
        await drain(stream)
        return before, long_done, short_done

    before, long_done, short_done = asyncio.run(scenario())
    assert len(long_job.prompt) > 512  # more than one chunk of the former n_batch reading
    assert long_done[1].prompt_tokens == len(long_job.prompt) and short_done[1].finish == "length"
    first_long = bench.trace.index(next(event for event in bench.trace if event[0] == "long"))
    first_short = bench.trace.index(next(event for event in bench.trace if event[0] == "short"))
    assert first_short < first_long  # the short prompt did not wait for the long one
    after_chunk = {chunks for name, chunks in bench.trace[:first_long] if name == "stream"}
    short_chunks = math.ceil(len(short_job.prompt) / CHUNK)
    last_chunk = before + long_chunks + short_chunks
    assert bench.trace[first_long][1] == last_chunk
    missing = [n for n in range(before + 1, last_chunk) if n not in after_chunk]
    assert missing == []  # the stream produced text after each chunk, before the next one


def test_chunked_reading_while_others_run_gives_what_reading_alone_gives(bench: Bench) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        alone = [(await drain(bench.start("a", bench.job(text, 24))))[0] for text in (LONG, SHORT)]
        stream = bench.start("stream", bench.job(COUNTING, 400))
        await pieces_seen(stream, 3)
        long = asyncio.create_task(drain(bench.start("long", bench.job(LONG, 24))))
        short = asyncio.create_task(drain(bench.start("short", bench.job(SHORT, 24))))
        together = [(await long)[0], (await short)[0]]
        await drain(stream)
        return alone, together

    alone, together = asyncio.run(scenario())
    assert together == alone


def test_a_prompt_chunk_larger_than_a_batch_is_refused(model: LlamaModel) -> None:
    shape = ContextShape(n_ctx_seq=256, n_seq_max=1, n_batch=64, n_threads=1)
    with pytest.raises(ValueError, match="prompt_chunk"):
        Scheduler(model, Vocabulary(model), shape, EngineStats(), prompt_chunk=65)
