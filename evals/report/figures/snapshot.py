"""Figures of each model's latest results: accuracy against cost and latency, latency against load, CDFs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evals.report.figures.common import Record, ci_text, error_bars, escaped, layout, pareto_frontier

if TYPE_CHECKING:
    import plotly.graph_objects as go


def pareto(board: Sequence[Record], accuracy_cis: Mapping[str, Any], palette: Mapping[str, str]) -> go.Figure:
    """Accuracy vs cost per 1M output tokens and vs P95 TTFT, one trace per model, the Pareto frontier dashed."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = (("usd_per_1m_at_slo", "USD / 1M output tokens at SLO", "$,.4g"), ("ttft_p95_ms", "P95 TTFT (ms)", ",.1f"))
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=[f"Accuracy vs {label}" for _, label, _ in panels]
    )
    for col, (key, label, fmt) in enumerate(panels, start=1):
        rows = [r for r in board if r.get("accuracy") is not None and r.get(key) is not None]
        on_frontier = {id(rows[i]) for i in pareto_frontier([(r[key], r["accuracy"]) for r in rows])}
        for r in rows:
            ci = accuracy_cis.get(r["model_id"])
            fig.add_trace(
                go.Scatter(
                    x=[r[key]],
                    y=[r["accuracy"]],
                    mode="markers",
                    name=escaped(r["model_id"]),
                    legendgroup=r["model_id"],
                    showlegend=col == 1,
                    meta={"role": "model", "model_id": r["model_id"]},
                    error_y=error_bars([r["accuracy"]], [ci]),
                    marker={
                        "size": 12,
                        "color": palette.get(r["model_id"]),
                        "line": {"width": 2.5 if id(r) in on_frontier else 0, "color": "#1d2430"},
                    },
                    customdata=[
                        [
                            escaped(r["model_id"]),
                            str(r.get("revision") or "")[:12],
                            r.get("eval_date"),
                            ci_text(ci),
                            "yes" if id(r) in on_frontier else "no",
                        ]
                    ],
                    hovertemplate=(
                        "<b>%{customdata[0]}</b><br>revision %{customdata[1]} · night %{customdata[2]}<br>"
                        f"accuracy %{{y:.3f}} (95% CI %{{customdata[3]}})<br>{label} %{{x:{fmt}}}<br>"
                        "Pareto frontier: %{customdata[4]}<extra></extra>"
                    ),
                ),
                row=1,
                col=col,
            )
        frontier = sorted((r[key], r["accuracy"]) for r in rows if id(r) in on_frontier)
        if len(frontier) > 1:
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in frontier],
                    y=[p[1] for p in frontier],
                    mode="lines",
                    line={"dash": "dash", "color": "#1d2430", "width": 1.5, "shape": "hv"},
                    name="Pareto frontier",
                    legendgroup="frontier",
                    showlegend=col == 1,
                    hoverinfo="skip",
                    meta={"role": "frontier"},
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text=label, rangemode="tozero", row=1, col=col)
        fig.update_yaxes(title_text="headline accuracy", row=1, col=col)
    return layout(fig, "Accuracy against cost and latency (ringed: on the Pareto frontier)", height=460)


def latency_vs_load(curves: Sequence[Record], palette: Mapping[str, str], load_type: str) -> go.Figure:
    """P95 TTFT and P95 E2E against load, a line per model (and scenario), 95 % CIs as bars, the SLO dashed."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [r for r in curves if r["load_type"] == load_type]
    scenarios = {r["scenario"] for r in rows}
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=["P95 TTFT", "P95 end-to-end latency"])
    lines: dict[tuple[str, str], list[Record]] = {}
    for r in rows:
        lines.setdefault((r["model_id"], r["scenario"]), []).append(r)
    x_label = "concurrent streams" if load_type == "concurrency" else "request rate (requests/s)"
    for col, (key, label) in enumerate((("ttft_p95_ms", "P95 TTFT (ms)"), ("e2e_p95_ms", "P95 E2E (ms)")), start=1):
        ci_key = key.replace("_ms", "_ci")
        for (model, scenario), levels in lines.items():
            levels = sorted(levels, key=lambda r: r["load"])
            fig.add_trace(
                go.Scatter(
                    x=[r["load"] for r in levels],
                    y=[r[key] for r in levels],
                    mode="lines+markers",
                    name=escaped(model if len(scenarios) == 1 else f"{model} · {scenario}"),
                    legendgroup=f"{model}|{scenario}",
                    showlegend=col == 1,
                    line={"color": palette.get(model), "width": 2},
                    error_y=error_bars([r[key] for r in levels], [r.get(ci_key) for r in levels]),
                    meta={"role": "model", "model_id": model, "scenario": scenario},
                    customdata=[
                        [
                            escaped(model),
                            str(r["revision"])[:12],
                            r["eval_date"],
                            ci_text(r.get(ci_key), ",.1f"),
                            "n/a" if r.get("goodput") is None else f"{r['goodput']:.0%}",
                            escaped(scenario),
                        ]
                        for r in levels
                    ],
                    hovertemplate=(
                        "<b>%{customdata[0]}</b> (%{customdata[5]})<br>revision %{customdata[1]} · night "
                        f"%{{customdata[2]}}<br>{x_label} %{{x}}<br>{label} %{{y:,.1f}} (95% CI %{{customdata[3]}})"
                        "<br>goodput %{customdata[4]}<extra></extra>"
                    ),
                ),
                row=1,
                col=col,
            )
        for limit in sorted({r["slo"][key] for r in rows if (r.get("slo") or {}).get(key) is not None}):
            fig.add_trace(
                go.Scatter(
                    x=_span([r["load"] for r in rows]),
                    y=[limit, limit],
                    mode="lines",
                    line={"dash": "dash", "color": "#c62828", "width": 1.5},
                    name=f"SLO {label} ≤ {limit:g}",
                    hovertemplate=f"SLO: {label} ≤ {limit:g}<extra></extra>",
                    meta={"role": "slo"},
                ),
                row=1,
                col=col,
            )
        loads = sorted({r["load"] for r in rows if r["load"] > 0})
        log_x = bool(loads) and loads[-1] / loads[0] >= 16
        # Ticks at the measured levels (a concurrency of 3.5 does not exist), unless there are too many to read.
        ticks = {"tickvals": loads, "ticktext": [f"{v:g}" for v in loads]} if 0 < len(loads) <= 12 else {}
        fig.update_xaxes(title_text=x_label, type="log" if log_x else "linear", row=1, col=col, **ticks)
        fig.update_yaxes(title_text=label, rangemode="tozero", row=1, col=col)
    title = f"Latency against load ({load_type}): the throughput–latency curve of each model's latest run"
    return layout(fig, title, height=460)


def cdf(lines: Sequence[Record], column: str, palette: Mapping[str, str]) -> go.Figure:
    """Empirical CDF of TTFT or E2E per model (its latest run at the named level), y from 0 to 1."""
    import plotly.graph_objects as go

    label = {"ttft_ms": "TTFT (ms)", "e2e_ms": "E2E latency (ms)"}[column]
    fig = go.Figure()
    for line in lines:
        level = f"{line['load_type']}={line['load']:g}"
        fig.add_trace(
            go.Scatter(
                x=line[column],
                y=line[f"{column}_share"],
                mode="lines",
                line={"shape": "hv", "color": palette.get(line["model_id"]), "width": 2},
                name=escaped(f"{line['model_id']} ({level})"),
                meta={"role": "model", "model_id": line["model_id"]},
                customdata=[
                    [escaped(line["model_id"]), str(line["revision"])[:12], line["eval_date"], level, line["n"]]
                ]
                * len(line[column]),
                hovertemplate=(
                    "<b>%{customdata[0]}</b> at %{customdata[3]}<br>revision %{customdata[1]} · night "
                    f"%{{customdata[2]}}<br>{label} %{{x:,.1f}}: %{{y:.1%}} of %{{customdata[4]}} requests"
                    "<extra></extra>"
                ),
            )
        )
    fig.add_hline(y=0.95, line_dash="dot", line_color="#5b6575", line_width=1)
    fig.update_xaxes(title_text=label, rangemode="tozero")
    fig.update_yaxes(title_text="share of requests", range=[0, 1], tickformat=".0%")
    title = "TTFT distribution" if column == "ttft_ms" else "End-to-end latency distribution"
    return layout(fig, f"{title} (dotted: P95)", height=420)


def _span(loads: Sequence[float]) -> list[float]:
    """Where a horizontal SLO line runs: across every level, and visibly wide when there is only one."""
    low, high = min(loads), max(loads)
    return [low, high] if high > low else [low * 0.75, high * 1.25]
