"""Log-probabilities from the embedded engine: the arithmetic, how entries travel with their text, and real
values from the model (greedy: the sampled token is the most likely one; repeatable; batching changes
nothing).

A prompt read whole and the same prompt read again from the prefix cache (its last token alone) can give
different logits: llama.cpp computes a lone token of a sequence slightly differently (see
``aicy.engine.scheduler``). Tests that compare runs therefore read the prompt once first.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import numpy as np
import pytest

from aicy.engine.llama import EngineJob, EngineResult, LlamaEngine, Sampling, ScoredText
from aicy.engine.logprobs import ScoredOut, Scorer, log_normalizer, top_tokens
from aicy.engine.model_file import default_model_path
from aicy.types import TokenLogprob

# arithmetic


def test_log_normalizer_matches_a_double_precision_log_softmax() -> None:
    rng = np.random.default_rng(7)
    for scale in (1.0, 10.0, 40.0):
        logits = (rng.standard_normal(49_152) * scale).astype(np.float32)
        wide = logits.astype(np.float64)
        reference = wide.max() + math.log(np.exp(wide - wide.max()).sum())
        assert log_normalizer(logits) == pytest.approx(reference, abs=1e-6)
        probabilities = np.exp(wide - log_normalizer(logits))
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)


def test_top_tokens_are_the_most_likely_first_ties_by_id() -> None:
    logits = np.array([0.5, 3.0, -1.0, 3.0, 2.0, 0.5], dtype=np.float32)
    assert top_tokens(logits, 3) == [1, 3, 4]
    assert top_tokens(logits, 6) == [1, 3, 4, 0, 5, 2]
    assert top_tokens(logits, 50) == [1, 3, 4, 0, 5, 2]
    assert top_tokens(logits, 0) == []


# entries travel with their text


def entry(name: str) -> TokenLogprob:
    return TokenLogprob(name, -1.0)


class FakeScorer(Scorer):
    def __init__(self) -> None:  # no vocabulary: ScoredOut only uses the scorer it is given
        pass


def scored(stops: tuple[str, ...] = ()) -> ScoredOut:
    return ScoredOut(stops, FakeScorer())


def test_each_token_goes_out_with_its_text() -> None:
    out = scored()
    a, b = entry("He"), entry("llo")
    assert out.push(b"He", a) == (ScoredText("He", (a,)), False)
    assert out.push(b"llo", b) == (ScoredText("llo", (b,)), False)
    assert out.rest() is None


def test_a_token_that_is_part_of_a_character_waits_for_the_one_that_completes_it() -> None:
    out = scored()
    first, second = entry("\\xc3"), entry("\\xa9")
    assert out.push("é".encode()[:1], first) == (None, False)
    assert out.push("é".encode()[1:], second) == (ScoredText("é", (first, second)), False)


def test_entries_wait_with_text_held_back_for_a_stop_string() -> None:
    out = scored(("END",))
    a, b, c = entry("ab"), entry("E"), entry("x")
    assert out.push(b"ab", a) == (ScoredText("ab", (a,)), False)
    assert out.push(b"E", b) == (None, False)  # "E" may start "END"
    assert out.push(b"x", c) == (ScoredText("Ex", (b, c)), False)


def test_a_stop_string_drops_its_tokens_but_keeps_one_that_began_before_it() -> None:
    out = scored(("END",))
    a, b = entry("abE"), entry("ND!")
    assert out.push(b"abE", a) == (ScoredText("ab", ()), False)
    assert out.push(b"ND!", b) == (ScoredText("", (a,)), True)

    out = scored(("END",))
    c, d, e = entry("ab"), entry("E"), entry("ND")
    out.push(b"ab", c)
    out.push(b"E", d)
    assert out.push(b"ND", e) == (None, True)


def test_what_is_held_back_goes_out_at_the_end() -> None:
    out = scored(("END",))
    a = entry("EN")
    assert out.push(b"EN", a) == (None, False)
    assert out.rest() == ScoredText("EN", (a,))
    out = scored()
    cut = entry("\\xc3")
    assert out.push("é".encode()[:1], cut) == (None, False)
    assert out.rest() == ScoredText("\ufffd", (cut,))


# the model's own values


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    engine = LlamaEngine(default_model_path(), n_ctx=1024, n_threads=2, n_seq_max=2)
    yield engine
    engine.close()


def make_job(engine: LlamaEngine, prompt: str, **sampling: object) -> EngineJob:
    tokens = engine.tokenize_chat([{"role": "user", "content": prompt}])
    return EngineJob(tokens, Sampling(**sampling))  # type: ignore[arg-type]


async def run(engine: LlamaEngine, job: EngineJob) -> tuple[str, list[TokenLogprob] | None]:
    """The job's text and, when it asked for them, its entries (plain pieces and scored ones never mix)."""
    texts: list[str] = []
    entries: list[TokenLogprob] = []
    kinds: set[type] = set()
    async for item in engine.run(job):
        if isinstance(item, EngineResult):
            continue
        kinds.add(type(item))
        if isinstance(item, ScoredText):
            texts.append(item.text)
            entries += item.logprobs
        else:
            texts.append(item)
    assert len(kinds) <= 1
    return "".join(texts), (entries if ScoredText in kinds else None)


def test_greedy_log_probabilities_are_the_models_own(engine: LlamaEngine) -> None:
    prompt = "Name three colours."
    asyncio.run(run(engine, make_job(engine, prompt, max_tokens=1)))  # the prompt, into the cache
    text, entries = asyncio.run(
        run(engine, make_job(engine, prompt, max_tokens=12, temperature=0, logprobs=5))
    )
    assert entries
    assert "".join(e.token for e in entries) == text
    assert b"".join(e.token_bytes or b"" for e in entries) == text.encode()
    for e in entries:
        assert len(e.top) == 5
        assert e.logprob <= 0
        assert e.logprob == max(t.logprob for t in e.top) == e.top[0].logprob  # greedy: the most likely
        assert e.top[0].token == e.token
        assert [t.logprob for t in e.top] == sorted((t.logprob for t in e.top), reverse=True)
        assert sum(math.exp(t.logprob) for t in e.top) <= 1 + 1e-6
    plain, none = asyncio.run(run(engine, make_job(engine, prompt, max_tokens=12, temperature=0)))
    assert none is None and plain == text  # asking for log-probabilities changes nothing else


def test_the_same_request_gives_the_same_numbers_alone_or_batched(engine: LlamaEngine) -> None:
    def job() -> EngineJob:
        return make_job(engine, "Write one line about the sea.", max_tokens=10, temperature=0, logprobs=3)

    asyncio.run(run(engine, job()))  # the prompt, into the cache
    first = asyncio.run(run(engine, job()))
    second = asyncio.run(run(engine, job()))
    assert first == second

    async def together() -> list[tuple[str, list[TokenLogprob] | None]]:
        other = make_job(engine, "Count to five.", max_tokens=10, temperature=0, logprobs=2)
        return list(await asyncio.gather(run(engine, job()), run(engine, other)))

    assert asyncio.run(together())[0] == first


def test_sampled_tokens_carry_their_log_probability_before_temperature(engine: LlamaEngine) -> None:
    hot = make_job(engine, "Say something.", max_tokens=8, temperature=1.5, seed=3, logprobs=20)
    text, entries = asyncio.run(run(engine, hot))
    assert entries is not None and "".join(e.token for e in entries) == text
    for e in entries:
        assert len(e.top) == 20 and e.logprob <= 0
        assert e.logprob <= e.top[0].logprob
        listed = {t.token_bytes: t.logprob for t in e.top}
        if e.token_bytes in listed:
            assert listed[e.token_bytes] == e.logprob
    zero = make_job(engine, "Say something.", max_tokens=3, temperature=0, logprobs=0)
    _, bare = asyncio.run(run(engine, zero))
    assert bare is not None and all(e.top == () for e in bare)


def test_top_logprobs_beyond_twenty_are_refused(engine: LlamaEngine) -> None:
    with pytest.raises(ValueError, match="top_logprobs"):
        asyncio.run(run(engine, make_job(engine, "Hi", max_tokens=2, logprobs=21)))
