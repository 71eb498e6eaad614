"""A PNG of each probe figure over time, one line per channel and model (needs matplotlib: optional)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aicy.serving.probes.report import FIGURES, RunFigures


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (``pip install 'aicy[plots]'``)."""


def write_plot(runs: Sequence[RunFigures], path: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import dates, pyplot
    except ImportError:
        raise PlotUnavailable("matplotlib is not installed: pip install 'aicy[plots]'") from None
    figure, axes = pyplot.subplots(len(FIGURES), 1, figsize=(10, 2.4 * len(FIGURES)), sharex=True)
    lines: dict[tuple[str, str], list[RunFigures]] = {}
    for run in runs:
        lines.setdefault((run.channel, run.model), []).append(run)
    for axis, name in zip(axes, FIGURES, strict=True):
        for (channel, model), points in lines.items():
            xs = [
                datetime.datetime.fromtimestamp(p.created_at) for p in points if p.figures[name] is not None
            ]
            ys = [p.figures[name] for p in points if p.figures[name] is not None]
            axis.plot(xs, ys, marker="o", label=f"{channel} / {model}")
        axis.set_ylabel("cost (micro-units)" if name == "cost" else name)
        axis.grid(True, alpha=0.3)
    untyped: Any = dates  # its classes are untyped (mypy --strict would refuse the calls)
    locator = untyped.AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(untyped.ConciseDateFormatter(locator))
    axes[0].legend(fontsize="small", loc="upper left")
    axes[0].set_title("aicy probes: median latency and time to first token, tokens and cost per run")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=80)
    pyplot.close(figure)
    return path
