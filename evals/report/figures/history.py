"""Figures over nights and of the latest night: trends with CI bands and change points, verdicts with CIs."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evals.report.figures.common import (
    NON_NEGATIVE,
    PALETTE,
    TREND_METRICS,
    VERDICT_COLOURS,
    Record,
    alpha,
    ci_text,
    error_bars,
    escaped,
    layout,
    short,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go


def trend(
    metric: str,
    series: Mapping[str, Sequence[Record]],
    palette: Mapping[str, str],
    changes: Sequence[Record] = (),
) -> go.Figure:
    """One metric over nights: a line per model, its 95 % CI as a band, change points as diamonds."""
    import plotly.graph_objects as go

    _, title, axis, fmt, ci_key = next(m for m in TREND_METRICS if m[0] == metric)
    fig = go.Figure()
    for model, points in series.items():
        colour = palette.get(model, PALETTE[0])
        segments = _ci_segments(points, ci_key) if ci_key is not None else []
        # A band needs two nights; a night alone (no neighbour with a CI) shows its CI as an error bar instead.
        alone = {id(s[0]) for s in segments if len(s) == 1}
        if ci_key is not None:
            for segment in (s for s in segments if len(s) > 1):
                fig.add_trace(
                    go.Scatter(
                        x=[p["eval_date"] for p in segment] + [p["eval_date"] for p in reversed(segment)],
                        y=[p[ci_key][1] for p in segment] + [p[ci_key][0] for p in reversed(segment)],
                        fill="toself",
                        fillcolor=alpha(colour, 0.18),
                        line={"width": 0},
                        mode="lines",
                        legendgroup=model,
                        showlegend=False,
                        hoverinfo="skip",
                        name=f"{escaped(model)} 95% CI",
                        meta={"role": "band", "model_id": model},
                    )
                )
        fig.add_trace(
            go.Scatter(
                x=[p["eval_date"] for p in points],
                y=[p.get(metric) for p in points],
                mode="lines+markers",
                name=escaped(model),
                legendgroup=model,
                line={"color": colour, "width": 2},
                marker={"size": 7},
                meta={"role": "model", "model_id": model},
                error_y=error_bars(
                    [p.get(metric) for p in points],
                    [p.get(ci_key) if ci_key and id(p) in alone else None for p in points],
                ),
                customdata=[
                    [
                        escaped(model),
                        str(p.get("revision") or "")[:12],
                        p["eval_date"],
                        ci_text(p.get(ci_key) if ci_key else None),
                    ]
                    for p in points
                ],
                hovertemplate=(
                    f"<b>%{{customdata[0]}}</b><br>revision %{{customdata[1]}} · night %{{customdata[2]}}<br>"
                    f"{axis} %{{y:{fmt}}} (95% CI %{{customdata[3]}})<extra></extra>"
                ),
            )
        )
    _change_markers(fig, metric, series, changes)
    fig.update_xaxes(title_text="night (eval date)", type="date", tickformat="%b %d, %Y", **_day_ticks(series))
    fig.update_yaxes(title_text=axis, rangemode="tozero" if metric in NON_NEGATIVE else "normal")
    return layout(fig, title, height=400)


def _day_ticks(series: Mapping[str, Sequence[Record]]) -> dict[str, Any]:
    """Whole-day ticks over short histories (Plotly would put two ticks on one day); its own choice on long ones."""
    days = sorted({dt.date.fromisoformat(str(p["eval_date"])[:10]) for points in series.values() for p in points})
    if not days or (days[-1] - days[0]).days > 60:
        return {}
    step = max(1, math.ceil(((days[-1] - days[0]).days + 1) / 8))
    first, last = (dt.datetime.combine(d, dt.time()) for d in (days[0], days[-1]))
    pad = dt.timedelta(hours=12)
    return {"dtick": step * 86_400_000, "tick0": days[0].isoformat(), "range": [str(first - pad), str(last + pad)]}


def _ci_segments(points: Sequence[Record], ci_key: str) -> list[list[Record]]:
    segments: list[list[Record]] = [[]]
    for p in points:
        ci = p.get(ci_key)
        if ci and ci[0] is not None and ci[1] is not None:
            segments[-1].append(p)
        elif segments[-1]:
            segments.append([])
    return [s for s in segments if s]


def series_metric(series_name: str) -> str | None:
    """Which trend chart a change-point series belongs on (None: no chart of it)."""
    name = series_name.lower()
    for needle, metric in (
        ("ttft", "ttft_p95_ms"),
        ("e2e", "e2e_p95_ms"),
        ("token", "output_tokens_per_s"),
        ("cost", "usd_per_1m_at_slo"),
        ("usd", "usd_per_1m_at_slo"),
        ("acc", "accuracy"),
    ):
        if needle in name:
            return metric
    return None


def _change_markers(
    fig: go.Figure, metric: str, series: Mapping[str, Sequence[Record]], changes: Sequence[Record]
) -> None:
    import plotly.graph_objects as go

    marks: dict[str, tuple[list[str], list[Any], list[str]]] = {"confirmed": ([], [], []), "tentative": ([], [], [])}
    for change in changes:
        night = next((str(change[k]) for k in ("night", "eval_date") if change.get(k)), None)
        model = str(change.get("model_id"))
        if night is None or series_metric(str(change.get("series", ""))) != metric or model not in series:
            continue
        # Rows written before statuses existed were judged by the old rule: shown as tentative.
        status = "confirmed" if change.get("status") == "confirmed" else "tentative"
        on_line = {p["eval_date"]: p.get(metric) for p in series[model]}
        xs, ys, texts = marks[status]
        xs.append(night[:10])
        ys.append(on_line.get(night[:10]))
        texts.append("<br>".join(f"{k}: {escaped(short(v))}" for k, v in change.items() if v is not None))
    for status, (xs, ys, texts) in marks.items():
        if not xs:
            continue
        symbol = "diamond" if status == "confirmed" else "diamond-open"
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=f"change point ({status})",
                marker={"symbol": symbol, "size": 16, "color": "#1d2430", "line": {"width": 2}},
                text=texts,
                hovertemplate=f"<b>change point, {status}</b><br>%{{text}}<extra></extra>",
                meta={"role": "change_point", "status": status},
            )
        )


def verdicts(rows: Sequence[Record]) -> go.Figure | None:
    """The night's regressions and improvements with their 95 % CIs: accuracy in points, the rest in % of baseline."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    judged = [r for r in rows if r.get("verdict") in VERDICT_COLOURS and r.get("delta") is not None]
    if not judged:
        return None
    panels = [
        ("accuracy", "Δ accuracy (points)", [r for r in judged if str(r["metric"]).startswith("accuracy")]),
        ("relative", "Δ latency, throughput, cost (% of baseline)", [r for r in judged if _relative(r)]),
    ]
    panels = [p for p in panels if p[2]]
    fig = make_subplots(
        rows=len(panels), cols=1, vertical_spacing=0.18, row_heights=[len(p[2]) for p in panels],
        subplot_titles=["Accuracy" if p[0] == "accuracy" else "Latency, throughput and cost" for p in panels],
    )  # fmt: skip
    in_legend: set[str] = set()
    for row, (kind, axis, items) in enumerate(panels, start=1):
        for verdict, colour in VERDICT_COLOURS.items():
            picked = [r for r in items if r["verdict"] == verdict]
            if not picked:
                continue
            scaled = [_scaled(r, kind) for r in picked]
            fig.add_trace(
                go.Scatter(
                    x=[s[0] for s in scaled],
                    y=[escaped(f"{r['model_id']} · {r['metric']} ({r['kind']})") for r in picked],
                    mode="markers",
                    name=verdict,
                    legendgroup=verdict,
                    showlegend=verdict not in in_legend,
                    marker={"color": colour, "size": 10},
                    error_x=error_bars([s[0] for s in scaled], [s[1] for s in scaled]),
                    meta={"role": "verdict"},
                    customdata=[_verdict_hover(r) for r in picked],
                    hovertemplate="%{customdata}<extra></extra>",
                ),
                row=row,
                col=1,
            )
            in_legend.add(verdict)
        fig.add_vline(x=0, line_color="#5b6575", line_width=1, row=row, col=1)  # type: ignore[arg-type]
        fig.update_xaxes(title_text=axis, zeroline=True, row=row, col=1)
        fig.update_yaxes(automargin=True, row=row, col=1)
    return layout(fig, "The night's verdicts with 95% CIs", height=160 + 34 * len(judged) + 70 * len(panels))


def _relative(r: Record) -> bool:
    return not str(r["metric"]).startswith("accuracy") and bool(r.get("baseline_value"))


def _scaled(r: Record, kind: str) -> tuple[float, list[float | None]]:
    if kind == "accuracy":
        factor = 100.0 if abs(r.get("baseline_value") or 0.0) <= 1.0 else 1.0  # 0–100 metrics are points already
    else:
        factor = 100.0 / abs(r["baseline_value"])
    ci = [None if r.get(k) is None else r[k] * factor for k in ("ci_low", "ci_high")]
    return r["delta"] * factor, ci


def _verdict_hover(r: Record) -> str:
    lines = [
        f"<b>{escaped(r['model_id'])}</b> · {r['verdict']}",
        f"revision {str(r.get('revision') or '')[:12]} · night {r.get('eval_date')}",
        escaped(f"{r['metric']} ({r['kind']})"),
        f"value {short(r.get('value'))} vs baseline {short(r.get('baseline_value'))}"
        f" ({escaped(r.get('baseline_model_id'))}@{str(r.get('baseline_revision') or '')[:12]})",
        f"Δ {short(r.get('delta'))}, 95% CI {ci_text([r.get('ci_low'), r.get('ci_high')], '.4g')}",
    ]
    extra = [f"{k} {short(r[k])}" for k in ("method", "n_pairs", "n_fixed", "n_broken", "mde") if r.get(k) is not None]
    if extra:
        lines.append(", ".join(extra))
    return "<br>".join(lines)
