"""The embedded engine itself: batched sequences give what they give alone, exact counts, cancellation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from aicy.engine.llama import EngineJob, EngineResult, LlamaEngine, Sampling
from aicy.engine.model_file import default_model_path
from aicy.engine.output import TextOut
from aicy.engine.prefix import common_prefix

SEQUENCES = 3
PROMPTS = [
    "Write a short poem about the sea.",
    "Explain what a computer is.",
    "List five fruits and their colours.",
    "Tell me about Paris.",
    "Describe a cat.",
]


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    engine = LlamaEngine(default_model_path(), n_ctx=2048, n_threads=2, n_seq_max=SEQUENCES)
    yield engine
    engine.close()


@dataclass
class Run:
    pieces: list[str]
    result: EngineResult
    job: EngineJob

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def job(engine: LlamaEngine, prompt: str, **sampling: object) -> EngineJob:
    turns = [{"role": "user", "content": prompt}]
    return EngineJob(engine.tokenize_chat(turns), Sampling(**sampling))  # type: ignore[arg-type]


async def collect(engine: LlamaEngine, job: EngineJob, started: asyncio.Event | None = None) -> Run:
    """Run a job to its end; ``started`` is set once its third piece arrived."""
    pieces: list[str] = []
    results: list[EngineResult] = []
    async for item in engine.run(job):  # ends after the result
        if isinstance(item, EngineResult):
            results.append(item)
            continue
        pieces.append(item)
        if started is not None and len(pieces) == 3:
            started.set()
    [result] = results
    return Run(pieces, result, job)


async def alone(engine: LlamaEngine, jobs: list[EngineJob]) -> list[Run]:
    return [await collect(engine, j) for j in jobs]


def same_jobs(engine: LlamaEngine, **sampling: object) -> list[EngineJob]:
    return [job(engine, p, **sampling) for p in PROMPTS]


def assert_same(runs: list[Run], reference: list[Run]) -> None:
    for run, ref in zip(runs, reference, strict=True):
        assert run.text == ref.text
        assert run.result.finish == ref.result.finish
        assert run.result.prompt_tokens == ref.result.prompt_tokens == len(run.job.prompt)
        assert run.result.cached_tokens == run.job.cached < len(run.job.prompt)
        assert run.job.produced == ref.job.produced == run.result.completion_tokens


def test_concurrent_greedy_jobs_give_what_they_give_alone(engine: LlamaEngine) -> None:
    """More jobs than sequences: some wait for a free one, and join the batch midway."""

    async def scenario() -> tuple[list[Run], list[Run]]:
        reference = await alone(engine, same_jobs(engine, max_tokens=40, temperature=0.0))
        together = await asyncio.gather(
            *(collect(engine, j) for j in same_jobs(engine, max_tokens=40, temperature=0.0))
        )
        return list(together), reference

    together, reference = asyncio.run(scenario())
    assert_same(together, reference)
    assert engine.stats.active_jobs == 0


def test_seeded_sampling_does_not_depend_on_the_other_jobs(engine: LlamaEngine) -> None:
    settings = {"max_tokens": 40, "temperature": 0.9, "top_p": 0.95, "seed": 1234}

    async def scenario() -> tuple[list[Run], list[Run]]:
        reference = await alone(engine, same_jobs(engine, **settings))
        together = await asyncio.gather(*(collect(engine, j) for j in same_jobs(engine, **settings)))
        return list(together), reference

    together, reference = asyncio.run(scenario())
    assert_same(together, reference)


def test_penalties_and_a_long_prompt_joining_running_jobs(engine: LlamaEngine) -> None:
    """A prompt longer than one batch is read in chunks while the other sequences keep generating."""
    long_prompt = "Summarise this: " + " ".join(f"item {i} is blue;" for i in range(90))

    def jobs() -> list[EngineJob]:
        return [
            job(engine, PROMPTS[0], max_tokens=60, temperature=0.0, presence_penalty=1.0),
            job(engine, PROMPTS[1], max_tokens=60, temperature=0.0, frequency_penalty=1.5),
            job(engine, long_prompt, max_tokens=20, temperature=0.0),
        ]

    async def scenario() -> tuple[list[Run], list[Run]]:
        reference = await alone(engine, jobs())
        first, second, late = jobs()
        started = asyncio.Event()
        running = [
            asyncio.create_task(collect(engine, first, started)),
            asyncio.create_task(collect(engine, second)),
        ]
        await started.wait()
        running.append(asyncio.create_task(collect(engine, late)))
        return list(await asyncio.gather(*running)), reference

    together, reference = asyncio.run(scenario())
    assert len(together[2].job.prompt) > 512
    assert_same(together, reference)


def test_grammar_constrained_concurrent_jobs_parse(engine: LlamaEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    person = str(json_schema_to_gbnf(json.dumps(schema)))
    prompts = ["Describe a person as JSON.", "Give me a JSON object.", "Invent a character."]

    async def scenario() -> list[Run]:
        return list(
            await asyncio.gather(
                *(
                    collect(engine, job(engine, p, max_tokens=120, temperature=0.7, grammar=person))
                    for p in prompts
                ),
                collect(
                    engine, job(engine, "Say hi in JSON.", max_tokens=200, temperature=0.0, grammar=JSON_GBNF)
                ),
            )
        )

    runs = asyncio.run(scenario())
    for run in runs[:3]:
        assert run.result.finish == "stop"
        parsed = json.loads(run.text, strict=False)  # the schema grammar lets control characters into strings
        assert set(parsed) == {"name", "age"} and isinstance(parsed["age"], int)
    if runs[3].result.finish == "stop":
        json.loads(runs[3].text, strict=False)


def test_a_bad_grammar_is_refused_before_anything_runs(engine: LlamaEngine) -> None:
    async def scenario() -> None:
        async for _ in engine.run(job(engine, "Hi", max_tokens=5, grammar="root ::= (")):
            pass

    before = engine.stats.finished_jobs
    with pytest.raises(ValueError):
        asyncio.run(scenario())
    assert engine.stats.finished_jobs == before


def test_cancelling_one_job_leaves_the_others_alone_and_its_count_final(engine: LlamaEngine) -> None:
    async def scenario() -> tuple[list[Run], list[Run], EngineJob, int, int]:
        settings = {"max_tokens": 60, "temperature": 0.0}
        reference = await alone(engine, [job(engine, p, **settings) for p in PROMPTS[:2]])
        before = engine.stats.generated_tokens
        victim = job(engine, PROMPTS[2], **settings)
        others = [asyncio.create_task(collect(engine, job(engine, p, **settings))) for p in PROMPTS[:2]]
        run = engine.run(victim)
        pieces = [await anext(run) for _ in range(5)]
        assert all(isinstance(p, str) for p in pieces)
        await run.aclose()
        counted = victim.produced
        done = list(await asyncio.gather(*others))
        generated = engine.stats.generated_tokens - before
        return done, reference, victim, counted, generated

    done, reference, victim, counted, generated = asyncio.run(scenario())
    assert_same(done, reference)
    assert 5 <= counted < 60 and victim.produced == counted
    assert generated == counted + sum(run.job.produced for run in done)


def test_counts_are_exact_at_the_limit_at_a_stop_string_and_at_end_of_generation(engine: LlamaEngine) -> None:
    """Plain English text: one piece per token, so the pieces count the tokens."""

    async def scenario() -> tuple[Run, Run, Run]:
        full = await collect(engine, job(engine, PROMPTS[3], max_tokens=30, temperature=0.0))
        cut_at = next(i for i, piece in enumerate(full.pieces) if i >= 10 and piece.strip())
        stop = full.pieces[cut_at].strip()
        stopped = await collect(engine, job(engine, PROMPTS[3], max_tokens=30, temperature=0.0, stop=(stop,)))
        short = await collect(
            engine, job(engine, "What is 2+2? Answer in one word.", max_tokens=50, temperature=0.0)
        )
        return full, stopped, short

    full, stopped, short = asyncio.run(scenario())
    assert full.result.finish == "length"
    assert full.job.produced == full.result.completion_tokens == len(full.pieces) == 30
    stop = stopped.job.sampling.stop[0]
    hit = full.text.find(stop)
    assert stopped.result.finish == "stop" and stopped.text == full.text[:hit]
    completing = next(i for i in range(30) if len("".join(full.pieces[: i + 1])) >= hit + len(stop))
    assert stopped.job.produced == stopped.result.completion_tokens == completing + 1
    assert short.result.finish == "stop" and short.job.produced == len(short.pieces) < 50


def test_nothing_to_generate(engine: LlamaEngine) -> None:
    async def scenario() -> tuple[list[str | EngineResult], list[str | EngineResult]]:
        empty = [item async for item in engine.run(job(engine, "Hi", max_tokens=0))]
        cancelled = job(engine, "Hi", max_tokens=10)
        cancelled.cancelled.set()
        return empty, [item async for item in engine.run(cancelled)]

    empty, cancelled = asyncio.run(scenario())
    assert empty == [EngineResult("length", empty[0].prompt_tokens, 0, 0)]  # type: ignore[union-attr]
    assert cancelled == [EngineResult("stop", cancelled[0].prompt_tokens, 0, 0)]  # type: ignore[union-attr]


def test_text_out_joins_utf8_split_across_tokens_and_holds_back_stops() -> None:
    out = TextOut(("END",))
    snowman = "☃".encode()
    assert out.push(b"a" + snowman[:1]) == ("a", False)
    assert out.push(snowman[1:]) == ("☃", False)
    assert out.push(b" E") == (" ", False)
    assert out.push(b"N") == ("", False)
    assert out.rest() == "EN"
    assert TextOut(("END",)).push(b"xEND") == ("x", True)


def test_a_prompt_that_starts_as_an_earlier_one_reads_only_what_is_new(engine: LlamaEngine) -> None:
    """Same slot (a repeated prompt) and another slot's stream copied over (a shared system prompt)."""
    system = {"role": "system", "content": "You answer in one short sentence. " * 12}

    def chat(question: str) -> EngineJob:
        turns = [system, {"role": "user", "content": question}]
        return EngineJob(engine.tokenize_chat(turns), Sampling(max_tokens=12, temperature=0.0))

    async def scenario() -> tuple[Run, Run, list[Run], Run]:
        first = await collect(engine, chat("Where is Paris?"))
        again = await collect(engine, chat("Where is Paris?"))
        # Two at once: one takes the slot that holds the system prompt, the other copies it into a free one.
        pair = await asyncio.gather(collect(engine, chat("Where is Rome?")), collect(engine, chat("Hi?")))
        uncached = LlamaEngine(default_model_path(), n_ctx=2048, n_threads=2, prefix_cache=False)
        try:
            reference = await collect(uncached, chat("Hi?"))
        finally:
            uncached.close()
        return first, again, list(pair), reference

    first, again, (rome, hi), reference = asyncio.run(scenario())
    shared = common_prefix(rome.job.prompt, hi.job.prompt)  # the system prompt and the user turn's start
    assert shared > 80
    assert again.text == first.text
    assert again.result.cached_tokens == len(again.job.prompt) - 1  # the last token is read for its logits
    assert rome.result.cached_tokens >= shared and hi.result.cached_tokens >= shared
    assert reference.result.cached_tokens == 0 and hi.text == reference.text
