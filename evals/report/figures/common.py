"""The figure module's shared pieces: palette, the Pareto frontier, CI text, error bars and the common layout."""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

Record = Mapping[str, Any]

# Plotly's and D3's categorical palettes: colour-blind-safe enough, distinct up to 20 models.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363",
)  # fmt: skip
VERDICT_COLOURS = {"regression": "#c62828", "improvement": "#2e7d32"}

# (key in the trend points, chart title, axis title, hover format, CI key or None)
TREND_METRICS = (
    ("accuracy", "Headline accuracy", "accuracy", ".3f", "accuracy_ci"),
    ("ttft_p95_ms", "P95 time to first token", "P95 TTFT (ms)", ",.1f", "ttft_p95_ci"),
    ("e2e_p95_ms", "P95 end-to-end latency", "P95 E2E (ms)", ",.1f", "e2e_p95_ci"),
    ("output_tokens_per_s", "Output throughput at capacity", "output tokens/s", ",.1f", None),
    ("usd_per_1m_at_slo", "Cost per 1M output tokens at the SLO", "USD / 1M output tokens", ",.4g", None),
)
NON_NEGATIVE = {"ttft_p95_ms", "e2e_p95_ms", "output_tokens_per_s", "usd_per_1m_at_slo"}
CONFIG = {"displaylogo": False, "responsive": True}


def colours(models: Sequence[str]) -> dict[str, str]:
    """One colour per model, the same in every figure of a page."""
    return {model: PALETTE[i % len(PALETTE)] for i, model in enumerate(dict.fromkeys(models))}


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


def escaped(value: Any) -> str:
    """Text for Plotly: its labels understand a little HTML (<b>, <a href>), so a model id's markup is escaped."""
    return html.escape(str(value), quote=False)


def ci_text(ci: Sequence[float | None] | None, fmt: str = ".3g") -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    return f"[{ci[0]:{fmt}}, {ci[1]:{fmt}}]"


def layout(fig: go.Figure, title: str, *, height: int = 400) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        height=height,
        margin={"l": 70, "r": 20, "t": 60, "b": 60},
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        # Below the plot, entries side by side and wrapping: a long model id takes a row, not the plot's width.
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.25, "yanchor": "top", "font": {"size": 11}},
        hoverlabel={"align": "left"},
    )
    return fig


def error_bars(values: Sequence[float | None], cis: Sequence[Sequence[float | None] | None]) -> dict[str, Any] | None:
    """Asymmetric error bars of ``values`` from their CIs; None when no point has one."""
    plus, minus = [], []
    for value, ci in zip(values, cis, strict=True):
        # A CI that does not hold its value describes other data (e.g. samples unlike the stored level): no bar.
        known = (
            value is not None and ci is not None and ci[0] is not None and ci[1] is not None and ci[0] <= value <= ci[1]
        )
        plus.append(ci[1] - value if known else None)  # type: ignore[index,operator]
        minus.append(value - ci[0] if known else None)  # type: ignore[index,operator]
    if all(p is None for p in plus):
        return None
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1.2, "width": 3}


def short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)[:80]


def alpha(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
