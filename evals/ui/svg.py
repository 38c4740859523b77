"""Small dependency-free SVG line charts of one metric over time (inline in the page, no JavaScript)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 320, 150
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 24, 26


@dataclass(frozen=True)
class Point:
    day: dt.date
    value: float | None
    label: str = ""  # shown in the hover tooltip, e.g. the revision


def line_chart(title: str, points: Sequence[Point], fmt: Callable[[float], str] = "{:.3g}".format) -> str:
    """An SVG chart of ``points``; a missing value breaks the line instead of being drawn as zero."""
    known = [p for p in points if p.value is not None]
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f'<text x="{LEFT}" y="15" class="title">{escape(title)}</text>'
    )
    if not known:
        return head + f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="na">no data</text></svg>'

    lo = min(p.value for p in known if p.value is not None)
    hi = max(p.value for p in known if p.value is not None)
    if hi == lo:  # a flat series still needs a visible band
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    first, last = points[0].day, points[-1].day
    span_days = (last - first).days

    def x(day: dt.date) -> float:
        if span_days == 0:
            return LEFT + (WIDTH - LEFT - RIGHT) / 2
        return LEFT + (day - first).days / span_days * (WIDTH - LEFT - RIGHT)

    def y(value: float) -> float:
        return TOP + (hi - value) / (hi - lo) * (HEIGHT - TOP - BOTTOM)

    parts = [head]
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts.append(f'<path class="axis" d="M{LEFT},{TOP} V{bottom} H{right}"/>')
    parts.append(f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{escape(fmt(hi))}</text>')
    parts.append(f'<text x="{LEFT - 4}" y="{bottom}" text-anchor="end">{escape(fmt(lo))}</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 8}">{first.isoformat()}</text>')
    if span_days:
        parts.append(f'<text x="{right}" y="{HEIGHT - 8}" text-anchor="end">{last.isoformat()}</text>')

    segment: list[str] = []
    segments: list[list[str]] = [segment]
    for p in points:
        if p.value is None:
            segment = []
            segments.append(segment)
        else:
            segment.append(f"{x(p.day):.1f},{y(p.value):.1f}")
    for seg in segments:
        if len(seg) > 1:
            parts.append(f'<polyline class="line" points="{" ".join(seg)}"/>')
    for p in known:
        assert p.value is not None
        tip = f"{p.day.isoformat()} {p.label}: {fmt(p.value)}".replace("  ", " ")
        parts.append(
            f'<circle class="dot" cx="{x(p.day):.1f}" cy="{y(p.value):.1f}" r="3"><title>{escape(tip)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)
