"""Bar charts as SVG made on the server: no chart library, no script; labels are escaped by the caller's
autoescaping template (this module returns plain data, the template draws it)."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 720
HEIGHT = 180
BOTTOM = 24  # room for the axis labels


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    show_label: bool


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    peak: str


def bar_chart(points: list[tuple[str, int]], shown: list[str] | None = None) -> Chart:
    """One bar per point, scaled to the largest; ``shown`` are the values' display texts (default: the
    numbers). At most about twelve labels are drawn under the axis."""
    top = max((value for _, value in points), default=0) or 1
    slot = WIDTH / max(1, len(points))
    every = max(1, round(len(points) / 12))
    texts = shown or [str(value) for _, value in points]
    bars = []
    for i, ((label, value), text) in enumerate(zip(points, texts, strict=True)):
        height = (HEIGHT - BOTTOM - 8) * value / top
        bars.append(
            Bar(
                x=round(i * slot + slot * 0.1, 1),
                y=round(HEIGHT - BOTTOM - height, 1),
                width=round(slot * 0.8, 1),
                height=round(height, 1),
                label=label,
                value=text,
                show_label=i % every == 0,
            )
        )
    peak = texts[[v for _, v in points].index(max(v for _, v in points))] if points else "0"
    return Chart(WIDTH, HEIGHT, bars, peak)
