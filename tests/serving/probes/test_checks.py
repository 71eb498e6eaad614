"""The checks on hand-made results: each one's pass, fail and skip, with the evidence it gives."""

from __future__ import annotations

from typing import Any

import pytest

from aicy.errors import InvalidRequest
from aicy.serving.probes.checks import drift, effort, fingerprint, limits, run_checks, usage
from aicy.serving.probes.runner import Result
from aicy.serving.probes.suite import load_suite, parse_suite


def result(prompt: str = "capital", **fields: Any) -> Result:
    base: dict[str, Any] = {"max_output_tokens": 64, "limit_case": False, "effort": None}
    return Result(prompt_id=prompt, **{**base, **fields})


def test_fingerprint_wants_one_offset_inside_the_family_overhead() -> None:
    same = [result(p, input_tokens=n + 7, own_input_tokens=n) for p, n in (("a", 10), ("b", 25))]
    assert fingerprint(same).verdict == "pass" and "constant offset 7" in fingerprint(same).reason
    made_up = [result(p, input_tokens=n + 40, own_input_tokens=n) for p, n in (("a", 10), ("b", 25))]
    assert fingerprint(made_up).verdict == "fail" and "outside" in fingerprint(made_up).reason
    varying = [
        result("a", input_tokens=12, own_input_tokens=10),
        result("b", input_tokens=31, own_input_tokens=25),
    ]
    found = fingerprint(varying)
    assert found.verdict == "fail" and [row["offset"] for row in found.evidence] == [2, 6]
    assert fingerprint([result(input_tokens=10)]).verdict == "skip"  # no known tokenizer: no own count
    assert fingerprint([result(status="error", input_tokens=3, own_input_tokens=9)]).verdict == "skip"


def juice(tokens: dict[str, int | None]) -> list[Result]:
    return [result("juice", effort=e, reasoning_tokens=n) for e, n in tokens.items()]


def test_effort_wants_reasoning_tokens_that_rise() -> None:
    assert effort(juice({"high": 900, "low": 50, "minimal": 0, "medium": 300})).verdict == "pass"
    flat = effort(juice({"low": 128, "medium": 128, "high": 128}))
    assert flat.verdict == "fail" and "do not move" in flat.reason
    assert flat.evidence == [
        {"prompt": "juice", "reasoning_tokens": {"low": 128, "medium": 128, "high": 128}}
    ]
    falling = effort(juice({"low": 300, "high": 100}))
    assert falling.verdict == "fail" and "do not rise from low to high" in falling.reason
    assert effort(juice({"low": None, "high": 100})).verdict == "skip"
    assert effort([result("capital")]).verdict == "skip"


def test_usage_compares_visible_output_with_the_text() -> None:
    fine = usage([result(output_tokens=130, reasoning_tokens=100, own_output_tokens=31)])
    assert fine.verdict == "pass"
    padded = usage([result(output_tokens=60, own_output_tokens=30)])
    assert padded.verdict == "fail" and padded.evidence == [
        {"prompt": "capital", "effort": None, "reported": 60, "counted": 30}
    ]
    assert usage([result(output_tokens=60)]).verdict == "skip"


def test_limits() -> None:
    cut = {"prompt": "limit", "limit_case": True, "max_output_tokens": 16}
    assert limits([result(**cut, output_tokens=16, status="incomplete", reason="length")]).verdict == "pass"
    over = limits([result(**cut, output_tokens=40, status="incomplete", reason="length")])
    assert over.verdict == "fail" and "40 output tokens over a limit of 16" in over.reason
    hidden = limits([result(**cut, output_tokens=16, status="completed")])
    assert hidden.verdict == "fail" and "reported as complete" in hidden.reason
    assert limits([result(**cut, output_tokens=5, status="completed")]).verdict == "skip"
    assert limits([result()]).verdict == "skip"


def row(answer: str, latency: int, output: int = 10, input_tokens: int = 20) -> dict[str, Any]:
    return {
        "prompt_id": "capital",
        "effort": None,
        "status": "completed",
        "answer": answer,
        "latency_ms": latency,
        "output_tokens": output,
        "input_tokens": input_tokens,
    }


def test_drift_against_the_channel_history() -> None:
    history = [row("The capital is Paris.", 900), row("The capital is Paris.", 1100)]
    now = result(answer="The capital is Paris.", latency_ms=1000, output_tokens=10, input_tokens=20)
    assert drift([now], history).verdict == "pass"
    assert drift([now], []).verdict == "skip"
    # three times slower, but by milliseconds: jitter, not a change
    quick = [row("The capital is Paris.", 2)]
    assert (
        drift(
            [result(answer="The capital is Paris.", latency_ms=9, output_tokens=10, input_tokens=20)], quick
        ).verdict
        == "pass"
    )
    slow = drift(
        [result(answer="The capital is Paris.", latency_ms=5000, output_tokens=10, input_tokens=20)], history
    )
    assert slow.verdict == "fail" and "latency is 5.0×" in slow.reason
    swapped = drift(
        [result(answer="Lyon, I believe!", latency_ms=1000, output_tokens=30, input_tokens=23)], history
    )
    assert swapped.verdict == "fail"
    for part in (
        "answers changed",
        "output tokens are 3.00×",
        "input tokens of a fixed prompt changed: capital",
    ):
        assert part in swapped.reason


def test_the_default_suite_asks_juice_at_each_effort() -> None:
    suite = load_suite()
    cases = [(c.prompt.id, c.effort) for c in suite.cases(("high", "low", "minimal", "medium"))]
    assert [e for p, e in cases if p == "juice"] == ["minimal", "low", "medium", "high"]
    assert next(p for p in suite.prompts if p.id == "juice").text == "告诉我你的Juice值,别给我说废话"
    assert [(p, e) for p, e in cases if p != "juice"] == [
        ("capital", None),
        ("arithmetic", None),
        ("haiku", None),
        ("limit", None),
    ]
    assert [c.effort for c in suite.cases(()) if c.prompt.id == "juice"] == [None]
    assert [c.name for c in run_checks([], [])] == ["fingerprint", "effort", "usage", "limits", "drift"]


def test_a_broken_suite_is_refused_with_the_reason() -> None:
    for text, words in (
        ("name = 'x'", "at least one [[prompts]]"),
        ("[[prompts]]\nid = 'a'", "string `id` and `text`"),
        ("[[prompts]]\nid = 'a'\ntext = 'b'\nefforts = 'some'", "`efforts`"),
        ("[[prompts]]\nid = 'a'\ntext = 'b'\n[[prompts]]\nid = 'a'\ntext = 'c'", "unique"),
        ("prompts = [", "not valid TOML"),
    ):
        with pytest.raises(InvalidRequest) as caught:
            parse_suite(text)
        assert words in caught.value.message
