"""The checks of one probe run: each a verdict (``pass``, ``fail``, ``skip`` with a reason) and its evidence.

- ``fingerprint``: the input tokens reported for fixed prompts, less aicy's count with the claimed family's
  tokenizer, must be one constant offset (a model adds the same hidden header to every prompt) inside the
  family's known overhead. Another tokenizer gives offsets that differ from prompt to prompt.
- ``effort``: on one prompt asked at several efforts, reasoning tokens must rise from the lowest effort to
  the highest; tokens that do not move mean the effort is ignored.
- ``usage``: the output tokens reported (less reasoning tokens) match aicy's count of the text received.
- ``limits``: a prompt meant to be cut is cut at its ``max_output_tokens`` and said to be (``length`` or
  ``incomplete``), with no more output tokens than allowed.
- ``drift``: this run against the channel's own history: answer similarity (difflib ratio), latency and
  output tokens (medians), input tokens (which must not change at all for a fixed prompt).
"""

from __future__ import annotations

import difflib
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aicy.serving.probes.runner import Result
from aicy.serving.probes.suite import EFFORT_ORDER

Verdict = Literal["pass", "fail", "skip"]

FINGERPRINT_OVERHEAD = (-1, 24)  # hidden tokens a family's API may add to every prompt (a reasoning header)
FINGERPRINT_SPREAD = 1  # how far one prompt's offset may stray from another's
USAGE_TOLERANCE = (2, 0.05)  # output tokens may differ from aicy's count by 2 tokens or 5%, the larger
LIMIT_SLACK = 0  # output tokens over max_output_tokens that still pass
DRIFT_SIMILARITY = 0.5  # median answer similarity below this flags a change
DRIFT_LATENCY = 3.0  # median latency more than this many times the history's flags a change…
DRIFT_LATENCY_FLOOR_MS = 1000  # …when it is also this much slower (milliseconds of jitter are no change)
DRIFT_TOKENS = (0.5, 2.0)  # median output tokens outside this share of the history's flags a change


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    verdict: Verdict
    reason: str
    evidence: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "reason": self.reason, "evidence": self.evidence}


def _answered(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r.status != "error"]


def fingerprint(results: Sequence[Result]) -> Check:
    rows: list[dict[str, Any]] = [
        {
            "prompt": r.prompt_id,
            "effort": r.effort,
            "reported": r.input_tokens,
            "counted": r.own_input_tokens,
            "offset": r.input_tokens - r.own_input_tokens,
        }
        for r in _answered(results)
        if r.input_tokens is not None and r.own_input_tokens is not None
    ]
    if not rows:
        return Check("fingerprint", "skip", "no input tokens reported, or no known tokenizer for the model")
    offsets: list[int] = [row["offset"] for row in rows]
    low, high = FINGERPRINT_OVERHEAD
    spread = max(offsets) - min(offsets)
    if spread > FINGERPRINT_SPREAD:
        reason = f"input-token offsets differ from prompt to prompt ({min(offsets)}…{max(offsets)}): "
        return Check("fingerprint", "fail", reason + "another tokenizer, so another model", rows)
    if not all(low <= o <= high for o in offsets):
        reason = f"offset {offsets[0]} is outside the family's known overhead ({low}…{high})"
        return Check("fingerprint", "fail", reason, rows)
    return Check("fingerprint", "pass", f"constant offset {offsets[0]} on {len(rows)} prompts", rows)


def effort(results: Sequence[Result]) -> Check:
    by_prompt: dict[str, list[Result]] = {}
    for r in _answered(results):
        if r.effort is not None:
            by_prompt.setdefault(r.prompt_id, []).append(r)
    groups = {p: rs for p, rs in by_prompt.items() if len(rs) >= 2}
    if not groups:
        return Check("effort", "skip", "no prompt was answered at two or more efforts")
    evidence: list[dict[str, Any]] = []
    failures: list[str] = []
    for prompt, rows in groups.items():
        rows.sort(key=lambda r: EFFORT_ORDER.index(r.effort or "none"))
        tokens = {r.effort: r.reasoning_tokens for r in rows}
        evidence.append({"prompt": prompt, "reasoning_tokens": tokens})
        values = [r.reasoning_tokens for r in rows]
        if any(v is None for v in values):
            return Check("effort", "skip", "the upstream reports no reasoning_tokens", evidence)
        if len(set(values)) == 1:
            failures.append(f"{prompt}: reasoning tokens do not move ({values[0]} at every effort)")
        elif values[-1] <= values[0]:  # type: ignore[operator]
            failures.append(
                f"{prompt}: reasoning tokens do not rise from {rows[0].effort} to {rows[-1].effort}"
            )
    if failures:
        return Check("effort", "fail", "effort ignored: " + "; ".join(failures), evidence)
    return Check("effort", "pass", "reasoning tokens rise with effort", evidence)


def usage(results: Sequence[Result]) -> Check:
    rows: list[dict[str, Any]] = []
    bad: list[str] = []
    for r in _answered(results):
        if r.output_tokens is None or r.own_output_tokens is None:
            continue
        visible = r.output_tokens - (r.reasoning_tokens or 0)
        allowed = max(USAGE_TOLERANCE[0], round(r.own_output_tokens * USAGE_TOLERANCE[1]))
        rows.append(
            {"prompt": r.prompt_id, "effort": r.effort, "reported": visible, "counted": r.own_output_tokens}
        )
        if abs(visible - r.own_output_tokens) > allowed:
            bad.append(f"{r.prompt_id}: {visible} reported, {r.own_output_tokens} counted")
    if not rows:
        return Check("usage", "skip", "no output tokens reported, or no known tokenizer for the model")
    if bad:
        return Check("usage", "fail", "output tokens do not match the text: " + "; ".join(bad), rows)
    return Check("usage", "pass", f"output tokens match the text on {len(rows)} answers", rows)


def limits(results: Sequence[Result]) -> Check:
    cut = [r for r in results if r.limit_case]
    if not cut:
        return Check("limits", "skip", "the suite has no prompt with `limit = true`")
    rows: list[dict[str, Any]] = []
    bad: list[str] = []
    skipped: list[str] = []
    for r in cut:
        produced = r.output_tokens if r.output_tokens is not None else r.own_output_tokens
        rows.append(
            {
                "prompt": r.prompt_id,
                "max_output_tokens": r.max_output_tokens,
                "output_tokens": produced,
                "status": r.status,
                "reason": r.reason,
            }
        )
        if r.status == "error":
            skipped.append(f"{r.prompt_id}: {r.reason}")
        elif produced is not None and produced > r.max_output_tokens + LIMIT_SLACK:
            bad.append(f"{r.prompt_id}: {produced} output tokens over a limit of {r.max_output_tokens}")
        elif r.status != "incomplete":
            if produced is not None and produced < r.max_output_tokens:
                skipped.append(f"{r.prompt_id}: the answer ended before the limit")
            else:
                bad.append(f"{r.prompt_id}: cut at the limit but reported as complete")
    if bad:
        return Check("limits", "fail", "; ".join(bad), rows)
    if skipped and len(skipped) == len(cut):
        return Check("limits", "skip", "; ".join(skipped), rows)
    return Check("limits", "pass", "cut at the limit and reported as incomplete", rows)


def _median(values: Iterable[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def drift(results: Sequence[Result], history: Sequence[dict[str, Any]]) -> Check:
    """``history``: earlier results of the same channel and model, as stored (``storage.probes``)."""
    past: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for row in history:
        if row["status"] != "error":
            past.setdefault((row["prompt_id"], row["effort"]), []).append(row)
    rows: list[dict[str, Any]] = []
    for r in _answered(results):
        before = past.get((r.prompt_id, r.effort))
        if not before:
            continue
        rows.append(
            {
                "prompt": r.prompt_id,
                "effort": r.effort,
                "similarity": round(
                    statistics.median(
                        difflib.SequenceMatcher(None, r.answer, b["answer"]).ratio() for b in before
                    ),
                    3,
                ),
                "latency_ms": r.latency_ms,
                "history_latency_ms": _median(b["latency_ms"] for b in before),
                "output_tokens": r.output_tokens,
                "history_output_tokens": _median(b["output_tokens"] for b in before),
                "input_tokens": r.input_tokens,
                "history_input_tokens": _median(b["input_tokens"] for b in before),
            }
        )
    if not rows:
        return Check("drift", "skip", "no history for this channel and model yet")
    return _drift_verdict(rows)


def _ratio(now: float | int | None, then: float | int | None) -> float | None:
    return now / then if now is not None and then else None


def _drift_verdict(rows: list[dict[str, Any]]) -> Check:
    similarity = statistics.median(row["similarity"] for row in rows)
    latency = _median(_ratio(row["latency_ms"], row["history_latency_ms"]) for row in rows)
    slower = _median(row["latency_ms"] - (row["history_latency_ms"] or 0) for row in rows) or 0
    tokens = _median(_ratio(row["output_tokens"], row["history_output_tokens"]) for row in rows)
    changed_inputs = [
        row["prompt"]
        for row in rows
        if row["input_tokens"] is not None
        and row["history_input_tokens"] is not None
        and row["input_tokens"] != row["history_input_tokens"]
    ]
    flags: list[str] = []
    if similarity < DRIFT_SIMILARITY:
        flags.append(f"answers changed (median similarity {similarity:.2f} < {DRIFT_SIMILARITY})")
    if latency is not None and latency > DRIFT_LATENCY and slower > DRIFT_LATENCY_FLOOR_MS:
        flags.append(f"latency is {latency:.1f}× the history's median")
    if tokens is not None and not DRIFT_TOKENS[0] <= tokens <= DRIFT_TOKENS[1]:
        flags.append(f"output tokens are {tokens:.2f}× the history's median")
    if changed_inputs:
        flags.append("input tokens of a fixed prompt changed: " + ", ".join(changed_inputs))
    summary = {
        "median_similarity": round(similarity, 3),
        "latency_ratio": None if latency is None else round(latency, 2),
        "output_tokens_ratio": None if tokens is None else round(tokens, 2),
        "prompts": rows,
    }
    if flags:
        return Check("drift", "fail", "; ".join(flags), summary)
    return Check("drift", "pass", f"in line with the history on {len(rows)} prompts", summary)


def run_checks(results: Sequence[Result], history: Sequence[dict[str, Any]]) -> list[Check]:
    return [fingerprint(results), effort(results), usage(results), limits(results), drift(results, history)]
