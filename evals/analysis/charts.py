"""Dependency-free inline SVG charts of the report: cost-coded scatter with a Pareto frontier, multi-line charts."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
)

Fmt = Callable[[float], str]


def _fmt(value: float) -> str:
    return f"{value:.3g}"


@dataclass(frozen=True)
class Frame:
    """Plot area geometry and the data → pixel mapping of one chart."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float

    def x(self, value: float) -> float:
        return self.left + (value - self.x_lo) / (self.x_hi - self.x_lo) * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        return self.top + (self.y_hi - value) / (self.y_hi - self.y_lo) * (self.height - self.top - self.bottom)

    def axes(self, x_label: str, y_label: str, x_fmt: Fmt, y_fmt: Fmt) -> str:
        b, r = self.height - self.bottom, self.width - self.right
        parts = [f'<path class="axis" d="M{self.left},{self.top} V{b} H{r}"/>']
        previous = None
        for i in range(5):
            xv = self.x_lo + (self.x_hi - self.x_lo) * i / 4
            yv = self.y_lo + (self.y_hi - self.y_lo) * i / 4
            if x_fmt(xv) != previous:  # a few days' span would print the same date twice
                parts.append(f'<text x="{self.x(xv):.1f}" y="{b + 14}" text-anchor="middle">{escape(x_fmt(xv))}</text>')
            previous = x_fmt(xv)
            parts.append(
                f'<text x="{self.left - 4}" y="{self.y(yv) + 4:.1f}" text-anchor="end">{escape(y_fmt(yv))}</text>'
            )
            parts.append(f'<path class="grid" d="M{self.left},{self.y(yv):.1f} H{r}"/>')
        parts.append(
            f'<text x="{(self.left + r) / 2}" y="{self.height - 4}" text-anchor="middle">{escape(x_label)}</text>'
        )
        parts.append(
            f'<text x="12" y="{(self.top + b) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 12 {(self.top + b) / 2})">{escape(y_label)}</text>'
        )
        return "".join(parts)


def _bounds(values: Sequence[float], pad: float = 0.05, single: float | None = None) -> tuple[float, float]:
    """Axis bounds with a margin; ``single`` is the half-width used when every value is the same."""
    lo, hi = min(values), max(values)
    if hi == lo:  # a single value still needs a visible band
        spread = single if single is not None else (abs(hi) * 0.1 or 1.0)
        return lo - spread, hi + spread
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


def _svg_open(width: int, height: int, title: str, css_class: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<text x="8" y="16" class="title">{escape(title)}</text>'
    )


def _no_data(width: int, height: int, title: str, css_class: str) -> str:
    return (
        _svg_open(width, height, title, css_class)
        + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="na">no data</text></svg>'
    )


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x, higher y), ordered by x.

    A point is dominated when another has x ≤ its x and y ≥ its y, with at least one strict.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    frontier: list[int] = []
    best_y = -math.inf
    for i in order:
        if points[i][1] > best_y:
            frontier.append(i)
            best_y = points[i][1]
    return frontier


def cost_colour(share: float) -> str:
    """Green (cheap, 0) → amber → red (expensive, 1)."""
    share = min(max(share, 0.0), 1.0)
    red = int(40 + 200 * min(1.0, 2 * share))
    green = int(170 - 130 * max(0.0, 2 * share - 1))
    return f"#{red:02x}{green:02x}50"


def scatter(
    title: str,
    points: Sequence[Mapping[str, float | str | None]],
    *,
    x_label: str = "P95 TTFT (ms)",
    y_label: str = "accuracy",
    width: int = 640,
    height: int = 400,
) -> str:
    """Points ``{"label", "x", "y", "cost"}``: size and colour by cost, Pareto frontier (low x, high y) marked."""
    usable = [p for p in points if isinstance(p.get("x"), float | int) and isinstance(p.get("y"), float | int)]
    if not usable:
        return _no_data(width, height, title, "chart scatter")
    xs = [float(p["x"]) for p in usable]  # type: ignore[arg-type]
    ys = [float(p["y"]) for p in usable]  # type: ignore[arg-type]
    frame = Frame(width, height, 56, 150, 28, 36, *_bounds(xs), *_bounds(ys))
    costs = [float(p["cost"]) for p in usable if isinstance(p.get("cost"), float | int)]  # type: ignore[arg-type]
    c_lo, c_hi = (min(costs), max(costs)) if costs else (0.0, 0.0)
    frontier = pareto_frontier(list(zip(xs, ys, strict=True)))
    parts = [_svg_open(width, height, title, "chart scatter"), frame.axes(x_label, y_label, _fmt, _fmt)]
    if len(frontier) > 1:
        steps = " ".join(f"{frame.x(xs[i]):.1f},{frame.y(ys[i]):.1f}" for i in frontier)
        parts.append(f'<polyline class="pareto-line" points="{steps}"/>')
    for i, p in enumerate(usable):
        cost = p.get("cost")
        share = (float(cost) - c_lo) / (c_hi - c_lo) if isinstance(cost, float | int) and c_hi > c_lo else 0.5
        radius = 5 + 9 * share if isinstance(cost, float | int) else 5
        colour = cost_colour(share) if isinstance(cost, float | int) else "#999999"
        on_frontier = i in frontier
        cost_text = f"${float(cost):.3g}/1M tok" if isinstance(cost, float | int) else "cost n/a"
        tip = f"{p['label']}: {y_label} {_fmt(ys[i])}, {x_label} {_fmt(xs[i])}, {cost_text}"
        parts.append(
            f'<circle class="point{" pareto" if on_frontier else ""}" cx="{frame.x(xs[i]):.1f}" '
            f'cy="{frame.y(ys[i]):.1f}" r="{radius:.1f}" fill="{colour}" data-model="{escape(str(p["label"]))}" '
            f'data-x="{xs[i]!r}" data-y="{ys[i]!r}" data-cost="{"" if cost is None else cost!r}" '
            f'data-pareto="{str(on_frontier).lower()}"><title>{escape(tip)}</title></circle>'
        )
        short = str(p["label"]).rsplit("/", 1)[-1]
        lx, ly = frame.x(xs[i]) + radius + 2, frame.y(ys[i]) + 4
        parts.append(f'<text class="label" x="{lx:.1f}" y="{ly:.1f}">{escape(short)}</text>')
    legend_x = width - 140
    parts.append(f'<text x="{legend_x}" y="40">USD / 1M output tok</text>')
    for j, share in enumerate((0.0, 0.5, 1.0)):
        value = c_lo + (c_hi - c_lo) * share
        parts.append(
            f'<circle cx="{legend_x + 10}" cy="{60 + 26 * j}" r="{5 + 9 * share:.1f}" fill="{cost_colour(share)}"/>'
            f'<text x="{legend_x + 28}" y="{64 + 26 * j}">{escape(_fmt(value)) if costs else "n/a"}</text>'
        )
    parts.append(
        f'<path class="pareto-line" d="M{legend_x},{150} h20"/><text x="{legend_x + 28}" y="154">Pareto frontier</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def multi_line(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    x_label: str,
    y_label: str,
    x_fmt: Fmt = _fmt,
    y_fmt: Fmt = _fmt,
    width: int = 480,
    height: int = 260,
    step: bool = False,
    markers: bool = True,
    x_single: float | None = None,
) -> str:
    """One line per series (``{name: [(x, y), ...]}``), coloured from the palette, with a legend below the title."""
    points = [pt for values in series.values() for pt in values]
    if not points:
        return _no_data(width, height, title, "chart lines")
    legend_rows = math.ceil(len(series) / 3)
    frame = Frame(
        width,
        height,
        56,
        12,
        28 + 14 * legend_rows,
        36,
        *_bounds([p[0] for p in points], 0.02, x_single),
        *_bounds([p[1] for p in points]),
    )
    parts = [_svg_open(width, height, title, "chart lines"), frame.axes(x_label, y_label, x_fmt, y_fmt)]
    for k, (name, values) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        lx, ly = 8 + (k % 3) * ((width - 16) // 3), 30 + 14 * (k // 3)
        parts.append(
            f'<rect x="{lx}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{ly + 1}">{escape(name.rsplit("/", 1)[-1])}</text>'
        )
        coords = [(frame.x(x), frame.y(y)) for x, y in values]
        if step and coords:
            path = [f"M{coords[0][0]:.1f},{coords[0][1]:.1f}"]
            path += [f"H{cx:.1f}V{cy:.1f}" for cx, cy in coords[1:]]
            parts.append(f'<path class="series" stroke="{colour}" d="{"".join(path)}" data-series="{escape(name)}"/>')
        elif len(coords) > 1:
            joined = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            parts.append(f'<polyline class="series" stroke="{colour}" points="{joined}" data-series="{escape(name)}"/>')
        if markers:
            for (x, y), (cx, cy) in zip(values, coords, strict=True):
                parts.append(
                    f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(f'{name}: {x_fmt(x)} → {y_fmt(y)}')}</title></circle>"
                )
    parts.append("</svg>")
    return "".join(parts)


def ci_bar(delta: float | None, low: float | None, high: float | None, *, width: int = 160, height: int = 16) -> str:
    """A tiny forest-plot row: the CI as a bar, the delta as a dot, zero as a vertical line."""
    if delta is None:
        return ""
    values = [v for v in (delta, low, high, 0.0) if v is not None]
    span = max(abs(v) for v in values) or 1.0
    frame = Frame(width, height, 4, 4, 0, 0, -span * 1.1, span * 1.1, 0.0, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ci" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<path class="zero" d="M{frame.x(0.0):.1f},1 V{height - 1}"/>',
    ]
    if low is not None and high is not None:
        parts.append(f'<path class="ci-bar" d="M{frame.x(low):.1f},{height / 2} H{frame.x(high):.1f}"/>')
    parts.append(f'<circle cx="{frame.x(delta):.1f}" cy="{height / 2}" r="3"/></svg>')
    return "".join(parts)
