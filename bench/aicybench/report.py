"""Turning the raw figures into the comparison tables, ``latest.json`` and the latency-vs-load plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from aicybench.stats import ratio

PATHS = ("direct", "aicy", "litellm")
Figures = dict[str, float | None]
_Y_TICKS = (1, 2, 5, 10, 20, 30, 50, 70, 100, 200, 500, 1000, 2000, 5000, 10000)


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def path_figures(name: str, measured: dict[str, Any]) -> Figures:
    """One path's headline figures; a gateway's own numbers come from its side of the paired rounds."""
    if "skipped" in measured:
        return {}
    side = "direct" if name == "direct" else "gateway"
    return {
        "latency_p50": _dig(measured, "latency_c1", side, "p50_ms"),
        "latency_p99": _dig(measured, "latency_c1", side, "p99_ms"),
        "added_p50": _dig(measured, "latency_c1", "added", "p50_ms"),
        "added_p99": _dig(measured, "latency_c1", "added", "p99_ms"),
        "responses_p50": _dig(measured, "responses_latency_c1", side, "p50_ms"),
        "responses_added_p50": _dig(measured, "responses_latency_c1", "added", "p50_ms"),
        "ttft_p50": _dig(measured, "stream_c1", side, "ttft_p50_ms"),
        "ttft_p99": _dig(measured, "stream_c1", side, "ttft_p99_ms"),
        "added_ttft_p50": _dig(measured, "stream_c1", "added", "ttft_p50_ms"),
        "added_ttft_p99": _dig(measured, "stream_c1", "added", "ttft_p99_ms"),
        "chunk_gap": _dig(measured, "stream_c1", side, "chunk_gap_ms"),
        "added_chunk_gap": _dig(measured, "stream_c1", "added", "chunk_gap_ms"),
        "capacity": _dig(measured, "capacity", "max_sustained_rps"),
        "capacity_added": _dig(measured, "capacity", "max_sustained_rps_added_target"),
    }


# (label, figure key, unit, whether aicy/direct is meaningful)
_ROWS = (
    ("Chat latency p50, concurrency 1", "latency_p50", "ms", True),
    ("Chat latency p99, concurrency 1", "latency_p99", "ms", True),
    ("Added latency p50", "added_p50", "ms", False),
    ("Added latency p99", "added_p99", "ms", False),
    ("Responses latency p50, concurrency 1", "responses_p50", "ms", True),
    ("Responses added latency p50", "responses_added_p50", "ms", False),
    ("Streamed time to first token p50", "ttft_p50", "ms", True),
    ("Streamed time to first token p99", "ttft_p99", "ms", True),
    ("Added time to first token p50", "added_ttft_p50", "ms", False),
    ("Added time to first token p99", "added_ttft_p99", "ms", False),
    ("Gap between token events", "chunk_gap", "ms", True),
    ("Added gap per token event", "added_chunk_gap", "ms", False),
    ("Capacity, p99 <= {slo} ms in total", "capacity", "req/s", True),
    ("Capacity, p99 <= {delay} + {slo} ms", "capacity_added", "req/s", True),
)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "req/s":
        return f"{value:.0f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def _fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def overhead_table(paths: dict[str, Any], slo_ms: float, delay_ms: float) -> str:
    figures = {name: path_figures(name, paths.get(name, {"skipped": "not run"})) for name in PATHS}
    lines = [
        "| Figure | unit | direct | aicy | LiteLLM | aicy/LiteLLM | aicy/direct |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, key, unit, vs_direct in _ROWS:
        d, a, lite = (figures[n].get(key) for n in PATHS)
        label = label.format(slo=f"{slo_ms:g}", delay=f"{delay_ms:g}")
        lines.append(
            f"| {label} | {unit} | {_fmt(d, unit)} | {_fmt(a, unit)} | {_fmt(lite, unit)} | "
            f"{_fmt_ratio(ratio(a, lite))} | {_fmt_ratio(ratio(a, d) if vs_direct else None)} |"
        )
    for name in PATHS:
        reason = paths.get(name, {}).get("skipped")
        if reason:
            lines.append(f"\n{name} skipped: {reason}")
    return "\n".join(lines)


def engine_table(engine: dict[str, Any]) -> str:
    if "skipped" in engine:
        return f"Engine figures skipped: {engine['skipped']}"
    raw, aicy = engine["raw"], engine["aicy"]
    key = next(k for k in aicy if k.startswith("concurrent_"))
    many, n = aicy[key], key.removeprefix("concurrent_")
    rows: list[tuple[str, float | None, float | None, str]] = [
        ("Decode tokens/s, one stream", raw["decode_tokens_per_s"], aicy["decode_tokens_per_s"], "tok/s"),
        (
            "End-to-end tokens/s, one stream",
            raw["end_to_end_tokens_per_s"],
            aicy["end_to_end_tokens_per_s"],
            "tok/s",
        ),
        ("Time to first token, one stream", raw["ttft_ms"], aicy["ttft_ms"], "ms"),
        (
            f"Aggregate tokens/s, {n} concurrent streams (raw: llama.cpp alone, one batch per step)",
            raw.get(f"batched_{n}", {}).get("aggregate_tokens_per_s"),
            many.get("aggregate_tokens_per_s"),
            "tok/s",
        ),
        (f"Time to first token p50, {n} concurrent streams", None, many.get("ttft_p50_ms"), "ms"),
        (f"Time to first token max, {n} concurrent streams", None, many.get("ttft_max_ms"), "ms"),
        ("Peak resident memory of the aicy server", None, aicy.get("peak_rss_mib"), "MiB"),
    ]
    lines = ["| Figure | unit | raw llama-cpp-python | aicy | aicy/raw |", "|---|---|---:|---:|---:|"]
    for label, r, a, unit in rows:
        lines.append(f"| {label} | {unit} | {_fmt(r, unit)} | {_fmt(a, unit)} | {_fmt_ratio(ratio(a, r))} |")
    lines.append(
        f"\nSame prompt, greedy, {aicy['completion_tokens']} tokens through aicy and "
        f"{raw['completion_tokens']} raw; prompt {raw['prompt_tokens']} tokens, {raw['threads']} threads."
    )
    if "skipped" in many:
        lines.append(f"{n} concurrent streams skipped: {many['skipped']}")
    else:
        scaling = ratio(many.get("aggregate_tokens_per_s"), aicy["end_to_end_tokens_per_s"])
        lines.append(
            f"Through aicy, {n} concurrent streams give {_fmt_ratio(scaling)} the tokens/s of one stream "
            "(end to end, target ≥ 1.6×); one stream decodes at "
            f"{_fmt_ratio(ratio(aicy['decode_tokens_per_s'], raw['decode_tokens_per_s']))} raw's rate "
            "(target ≥ 0.9×)."
        )
    return "\n".join(lines)


def prefill_table(figures: dict[str, Any]) -> str:
    """Issue 13's three criteria: the running stream keeps ≥ 0.5× its tokens/s, the short request's first
    token comes in < 2 s, the long prompt's prefill grows by ≤ 1.2×."""
    if "skipped" in figures:
        return f"Prefill figures skipped: {figures['skipped']}"
    rows = (
        ("Long prompt prefill (time to first token)", "prefill_alone_s", "prefill_with_stream_s", "s"),
        (
            "Running stream tokens/s",
            "stream_alone_tokens_per_s",
            "stream_during_prefill_tokens_per_s",
            "tok/s",
        ),
        ("Short request time to first token", "short_ttft_alone_s", "short_ttft_during_prefill_s", "s"),
    )
    lines = ["| Figure | unit | alone | during the long prefill | ratio |", "|---|---|---:|---:|---:|"]
    for label, alone_key, during_key, unit in rows:
        a, d = figures.get(alone_key), figures.get(during_key)
        lines.append(f"| {label} | {unit} | {_fmt(a, unit)} | {_fmt(d, unit)} | {_fmt_ratio(ratio(d, a))} |")
    lines.append(
        f"\nLong prompt {figures.get('long_prompt_tokens')} tokens. Targets: stream kept ≥ 0.50× "
        f"({_fmt_ratio(figures.get('stream_kept'))}),"
        " short time to first token < 2 s, prefill growth ≤ 1.20× "
        f"({_fmt_ratio(figures.get('prefill_growth'))}; the stream runs for the whole prefill)."
    )
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def plot_latency_vs_load(paths: dict[str, Any], slo_ms: float, delay_ms: float, out: Path) -> bool:
    """p50 and p99 against offered load, one colour per path; False when there is nothing to draw."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {n: _dig(paths.get(n), "capacity", "points") for n in PATHS}
    curves = {n: pts for n, pts in curves.items() if pts}
    if not curves:
        return False
    colours = {"direct": "tab:gray", "aicy": "tab:blue", "litellm": "tab:red"}
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    for name, points in curves.items():
        xs = [p["offered"] for p in points]
        ax.plot(xs, [p["p99_ms"] for p in points], "-", color=colours[name], label=f"{name} p99")
        ax.plot(xs, [p["p50_ms"] for p in points], "--", color=colours[name], alpha=0.7, label=f"{name} p50")
        _marks(ax, points, colours[name], lambda p: bool(p["sustained"]))
    ax.axhline(slo_ms, color="black", linewidth=0.8, linestyle=":", label=f"p99 target {slo_ms:g} ms")
    ax.axhline(
        slo_ms + delay_ms, color="black", linewidth=0.8, linestyle="-.", label=f"{delay_ms:g} + {slo_ms:g} ms"
    )
    ax.axhline(delay_ms, color="green", linewidth=0.8, linestyle=":", label=f"mock delay {delay_ms:g} ms")
    ax.set(
        xscale="log", yscale="log", xlabel="offered load (requests/s, constant rate)", ylabel="latency (ms)"
    )
    low, high = ax.get_ylim()
    ax.set_yticks([t for t in _Y_TICKS if low <= t <= high])
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    title = "Latency against offered load (Chat Completions, non-streaming; "
    title += f"x: not sustained within {slo_ms:g} ms)"
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return True


def _marks(ax: Any, points: list[dict[str, Any]], colour: str, ok: Callable[[dict[str, Any]], bool]) -> None:
    for p in points:
        ax.plot(p["offered"], p["p99_ms"], "o" if ok(p) else "x", color=colour, markersize=5)
