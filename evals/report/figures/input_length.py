"""The RAG figure: P95 TTFT against input length per model (prompt-length sweeps), the SLO as a horizontal line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from evals.report.figures.common import Record, escaped, layout

if TYPE_CHECKING:
    import plotly.graph_objects as go

_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


def ttft_vs_input_length(lines: Sequence[Record], palette: Mapping[str, str]) -> go.Figure | None:
    """P95 TTFT against context tokens, one line per model (a dash per load level when a sweep ran several), the
    SLO's P95 TTFT limit dashed red, and an ✕ where each line crosses it. None without sweeps."""
    import plotly.graph_objects as go

    if not lines:
        return None
    fig = go.Figure()
    levels = sorted({(line["load_type"], line["load"]) for line in lines})
    several = len(levels) > 1 or len({line["scenario"] for line in lines}) > 1
    lengths = sorted({p["input_tokens"] for line in lines for p in line["points"]})
    for line in lines:
        model, points = line["model_id"], sorted(line["points"], key=lambda p: p["input_tokens"])
        level = f"{line['load_type']}={line['load']:g}"
        dash = _DASHES[levels.index((line["load_type"], line["load"])) % len(_DASHES)]
        fig.add_trace(
            go.Scatter(
                x=[p["input_tokens"] for p in points],
                y=[p["ttft_p95_ms"] for p in points],
                mode="lines+markers",
                name=escaped(f"{model} · {level}" if several else model),
                legendgroup=model,
                line={"color": palette.get(model), "width": 2, "dash": dash},
                meta={"role": "model", "model_id": model, "scenario": line["scenario"], "level": level},
                customdata=[
                    [
                        escaped(model),
                        str(line["revision"])[:12],
                        line["eval_date"],
                        level,
                        "n/a" if p.get("prompt_tokens_p50") is None else f"{p['prompt_tokens_p50']:,.0f}",
                        f"{p['n_failed']}/{p['n_requests']}",
                    ]
                    for p in points
                ],
                hovertemplate=(
                    "<b>%{customdata[0]}</b> at %{customdata[3]}<br>revision %{customdata[1]} · night "
                    "%{customdata[2]}<br>context %{x:,} tokens (prompt P50 %{customdata[4]} reported)<br>"
                    "P95 TTFT %{y:,.1f} ms · failed %{customdata[5]}<extra></extra>"
                ),
            )
        )
        crossing = line.get("crossing") or {}
        if crossing.get("length") is not None:
            fig.add_trace(
                go.Scatter(
                    x=[crossing["length"]],
                    y=[line["slo_ttft_p95_ms"]],
                    mode="markers",
                    marker={"symbol": "x", "size": 11, "color": palette.get(model)},
                    legendgroup=model,
                    showlegend=False,
                    meta={"role": "crossing", "model_id": model, "level": level},
                    hovertemplate=(
                        f"<b>{escaped(model)}</b> at {level}: P95 TTFT crosses the SLO at ≈ %{{x:,.0f}} context "
                        "tokens<extra></extra>"
                    ),
                )
            )
    for limit in sorted({line["slo_ttft_p95_ms"] for line in lines if line.get("slo_ttft_p95_ms") is not None}):
        fig.add_trace(
            go.Scatter(
                x=[lengths[0], lengths[-1]] if lengths[-1] > lengths[0] else [lengths[0] * 0.75, lengths[0] * 1.25],
                y=[limit, limit],
                mode="lines",
                line={"dash": "dash", "color": "#c62828", "width": 1.5},
                name=f"SLO P95 TTFT ≤ {limit:g} ms",
                hovertemplate=f"SLO: P95 TTFT ≤ {limit:g} ms<extra></extra>",
                meta={"role": "slo"},
            )
        )
    log_x = lengths[-1] / lengths[0] >= 8
    ticks = {"tickvals": lengths, "ticktext": [f"{v:,}" for v in lengths]} if len(lengths) <= 12 else {}
    fig.update_xaxes(title_text="retrieved-context tokens", type="log" if log_x else "linear", **ticks)
    fig.update_yaxes(title_text="P95 TTFT (ms)", rangemode="tozero")
    return layout(fig, "Time to first token against input length (RAG-shaped load)", height=440)
