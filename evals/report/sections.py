"""The sections the report and the Results page share: what they read (collect) and how it is drawn (HTML + figures)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from evals.report import figure_data, figures

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from evals.warehouse.views import ReadModel

Record = dict[str, Any]

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea}
h3{font-size:15px;margin:16px 0 6px}.meta{color:#5b6575}code{font-size:12px}a{color:#1f5fbf}
table{border-collapse:collapse;margin:8px 0;display:block;max-width:100%;overflow-x:auto}
th,td{padding:4px 8px;border-bottom:1px solid #e6e9ef;text-align:right;
white-space:nowrap}th{background:#f3f5f8;font-weight:600}td.text,th.text{text-align:left}
table.sortable th{cursor:pointer}table.sortable th[aria-sort=ascending]::after{content:" ▲"}
table.sortable th[aria-sort=descending]::after{content:" ▼"}.regression{color:#b3261e;font-weight:600}
.improvement{color:#1b7f3b}.none{color:#5b6575;font-style:italic}figure.plot{margin:8px 0 18px}
figure.plot figcaption{color:#5b6575;font-size:13px}.plot-target{width:100%;min-height:200px}
.notice{padding:.8rem 1rem;border-radius:4px;background:#fff6e0;max-width:60rem}.notice.error{background:#fde8e8}
form.filters{display:flex;gap:12px;align-items:end;margin:8px 0}form.filters label{display:flex;flex-direction:column;
font-size:12px;color:#5b6575}dl.provenance{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
dl.provenance dt{color:#5b6575}dl.provenance dd{margin:0;font-family:ui-monospace,monospace;font-size:12px;
white-space:pre-wrap;word-break:break-all}
"""

# (column, header, kind) of the leaderboard, in order; columns the view lacks are left out, and any column the view
# gains later shows after these under its own name.
LEADERBOARD_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rank", "#", "int"),
    ("rank_interval", "Rank 95% CI", "text"),  # rank_low–rank_high: the bootstrap interval of the rank
    ("model_id", "Model", "model"),
    ("revision", "Revision", "revision"),
    ("eval_date", "Night", "text"),
    ("accuracy", "Accuracy", "3f"),
    ("accuracy_mde", "Detectable effect", "3f"),
    ("n_tasks", "Tasks", "int"),
    ("slo_accuracy", "SLO-effective accuracy", "3f"),
    ("level", "Reference load", "text"),
    ("ttft_p95_ms", "P95 TTFT ms", "1f"),
    ("e2e_p95_ms", "P95 E2E ms", "1f"),
    ("capacity", "Capacity at SLO", "g"),
    ("capacity_status", "Capacity status", "text"),
    ("goodput_at_capacity", "Goodput at capacity", "pct"),
    ("goodput_ci_low", "Goodput CI low", "pct"),
    ("goodput_ci_high", "Goodput CI high", "pct"),
    ("slo_tokens_per_s", "SLO tok/s at capacity", "1f"),
    ("usd_per_1m_at_slo", "USD / 1M tok at SLO", "usd"),
    ("guardrail_score", "Guardrail score", "3f"),
    ("ttft_tail_ratio", "P99/P50 TTFT", "2f"),
    ("error_rate", "Error rate", "pct1"),
    ("error_rate_ci_high", "Error rate CI high", "pct1"),
    ("ttft_p95_cv", "P95 TTFT night CV", "pct1"),
    ("ttft_tail_ratio_cv", "P99/P50 night CV", "pct1"),
    ("cv_nights", "CV nights", "int"),
)
# Shown as the board's heading or the level cell, or of interest to programs only (the JSON API has them).
HIDDEN = {
    "suite", "scenario", "reference_load_type", "reference_load", "run_id", "tokens_per_s_at_capacity",
    "capacity_ttft_p95_ms", "capacity_e2e_p95_ms", "rank_low", "rank_high", "n_requests_at_capacity",
    "error_rate_ci_low", "guardrail_score_se", "guardrail_run_id",
}  # fmt: skip


def collect(
    con: ReadModel,
    *,
    min_goodput: float,
    suite: str | None = None,
    scenario: str | None = None,
    model_id: str | None = None,
    max_models: int = 12,
) -> dict[str, Any]:
    """Everything the figures draw, JSON-safe; ``model_id`` narrows every figure but the leaderboard to one model."""
    from evals.report import decision_view
    from evals.report.input_length_data import ttft_by_input_length

    board = figure_data.leaderboard(con, suite=suite, scenario=scenario)
    shown = [model_id] if model_id is not None else list(dict.fromkeys(r["model_id"] for r in board))[:max_models]
    # An overview draws the last TREND_DAYS; one model's page its whole history.
    days = TREND_DAYS if model_id is None else None
    trends = figure_data.trends(con, shown, min_goodput=min_goodput, suite=suite, scenario=scenario, days=days)
    curves = figure_data.latency_curves(con, shown, scenario=scenario)
    night, comparisons = figure_data.night(con)
    if model_id is not None:
        comparisons = [c for c in comparisons if c["model_id"] == model_id]
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "filters": {"suite": suite, "scenario": scenario, "model_id": model_id},
        "leaderboard": board,
        "models": shown,
        "models_omitted": max(0, len({r["model_id"] for r in board}) - len(shown)) if model_id is None else 0,
        "trends": trends,
        "latency_curves": curves,
        "cdfs": figure_data.cdfs(con, curves),
        "input_lengths": ttft_by_input_length(con, shown, scenario=scenario),
        "night": night,
        "comparisons": comparisons,
        "change_points": figure_data.change_points(con, shown),
        "decisions": decision_view.latest_decisions(con),
    }


def figure_sections(data: Mapping[str, Any], *, model_links: bool = False) -> list[str]:
    """The page body shared by the report and the Results page: leaderboard, figures, verdicts, change points."""
    from evals.report import decision_view
    from evals.report.glance import NOTE as GLANCE_NOTE
    from evals.report.glance import glance_tables

    palette = figures.colours([*data["models"], *(r["model_id"] for r in data["leaderboard"])])
    latest_ci = {
        model: next((p["accuracy_ci"] for p in reversed(points) if p.get("accuracy_ci")), None)
        for model, points in data["trends"].items()
    }
    shown = set(data["models"])
    board = [r for r in data["leaderboard"] if r["model_id"] in shown]
    glance = glance_tables(data["leaderboard"], model_links=model_links)
    out = [
        *([decision_view.decision_section(data["decisions"])] if data.get("decisions") else []),
        *([section("At a glance", glance, GLANCE_NOTE)] if glance else []),
        section("Leaderboard", leaderboard_tables(data["leaderboard"], model_links=model_links), LEADERBOARD_NOTE),
        section(
            "Accuracy, cost and latency",
            figure_block("fig-pareto", figures.pareto(board, latest_ci, palette), PARETO_NOTE)
            if any(r.get("accuracy") is not None for r in board)
            else _none("No model has both accuracy and latency results yet."),
        ),
    ]
    curves = data["latency_curves"]
    load_types = sorted({r["load_type"] for r in curves})
    out.append(
        section(
            "Latency against load",
            "".join(
                figure_block(f"fig-latency-{t}", figures.latency_vs_load(curves, palette, t), LOAD_NOTE)
                for t in load_types
            )
            or _none("No latency results yet."),
        )
    )
    if data.get("input_lengths"):
        fig = figures.ttft_vs_input_length(data["input_lengths"], palette)
        out.append(section("TTFT against input length", figure_block("fig-ttft-input", fig), INPUT_NOTE))
    out.append(section(f"Verdicts of the latest night ({data['night'] or 'no comparisons yet'})", _verdicts(data)))
    if data.get("discovery"):
        out.append(discovery_section(data["discovery"]))
    trend_blocks = [
        figure_block(f"fig-trend-{metric}", figures.trend(metric, data["trends"], palette, data["change_points"]))
        for metric, *_ in figures.TREND_METRICS
        if any(p.get(metric) is not None for points in data["trends"].values() for p in points)
    ]
    out.append(section("Trends", "".join(trend_blocks) or _none("No history yet."), TREND_NOTE))
    if data["change_points"]:
        out.append(section("Change points", records_table("change-points", data["change_points"])))
    cdf_blocks = (
        [
            figure_block(f"fig-cdf-{c.split('_')[0]}", figures.cdf(data["cdfs"], c, palette))
            for c in ("ttft_ms", "e2e_ms")
        ]
        if data["cdfs"]
        else []
    )
    out.append(section("Latency distributions", "".join(cdf_blocks) or _none("No latency samples yet."), CDF_NOTE))
    return out


TREND_DAYS = 180

LEADERBOARD_NOTE = "Latest published run per model. Click a column header to sort."
PARETO_NOTE = (
    "Up and to the left is better. Dashed: the Pareto frontier — no other model is both cheaper (or faster) and more "
    "accurate. Bars: 95% CI of the headline accuracy."
)
LOAD_NOTE = "Each model's latest latency run, every load level; bars: 95% CI of the P95 from the request samples."
INPUT_NOTE = "Each model's latest prompt-length sweep (RAG scenario): P95 TTFT per context length; ✕: SLO crossing."
TREND_NOTE = (
    f"One point per model and night (the run's headline load level) over the last {TREND_DAYS} days (a model's own "
    "page: its whole history); bands: 95% CI; change points: filled diamond = confirmed (2 later nights showed the "
    "new level), hollow diamond = tentative (too few nights yet)."
)
CDF_NOTE = (
    "Each model's latest latency run at the lightest load level all models ran (the legend names it), successful "
    "requests only."
)


def section(title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="meta">{escape(note)}</p>' if note else ""
    return f"<section><h2>{escape(title)}</h2>{note_html}{body}</section>"


def figure_block(fig_id: str, fig: go.Figure | None, caption: str = "") -> str:
    """A figure's target element and its JSON (a data block: never executed, so no CSP exception is needed)."""
    if fig is None:
        return ""
    plotted = fig.to_plotly_json()
    spec = {"data": plotted["data"], "layout": plotted["layout"], "config": figures.CONFIG}
    caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure class="plot"><div id="{fig_id}" class="plot-target"></div>{caption_html}'
        f'<script type="application/json" data-figure="{fig_id}">{json_for_script(spec)}</script></figure>'
    )


def json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element: escaping <, > and & keeps any model name from closing it."""
    from plotly.utils import PlotlyJSONEncoder

    text = json.dumps(value, cls=PlotlyJSONEncoder, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def asset(name: str) -> str:
    """A script the pages run: ``figures.js`` (ours) or ``plotly.min.js`` (the plotly package's own copy)."""
    if name == "plotly.min.js":
        return (resources.files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    if name == "figures.js":
        return (resources.files("evals.report") / "assets" / "figures.js").read_text(encoding="utf-8")
    raise KeyError(name)


# ---------------------------------------------------------------------------------------------- tables


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{value:.0%}"
    if kind == "pct1":
        return f"{value:.1%}"
    if kind == "usd":
        return f"${value:,.4g}"
    if kind == "int":
        return f"{value:,}"
    if kind in ("1f", "2f", "3f") and isinstance(value, int | float):
        return f"{value:,.{kind[0]}f}"
    if kind == "g" and isinstance(value, int | float):
        return f"{value:g}"
    return str(value)


def leaderboard_tables(rows: Sequence[Record], *, model_links: bool = False) -> str:
    """One sortable table per (suite, scenario) of the leaderboard rows."""
    if not rows:
        return _none("No published runs.")
    groups: dict[tuple[Any, Any], list[Record]] = {}
    for r in rows:
        groups.setdefault((r.get("suite"), r.get("scenario")), []).append(r)
    present = set().union(*(r.keys() for r in rows))
    derived = {"level", "rank_interval"}
    columns = [c for c in LEADERBOARD_COLUMNS if c[0] in present or c[0] in derived]
    known = {c[0] for c in LEADERBOARD_COLUMNS}
    columns += [(c, c.replace("_", " "), "g") for c in rows[0] if c not in known and c not in HIDDEN]
    out = []
    for (suite, scenario), group in groups.items():
        if len(groups) > 1 or suite or scenario:
            out.append(f"<h3>Suite {escape(str(suite or '–'))} · scenario {escape(str(scenario or '–'))}</h3>")
        head = "".join(
            f'<th class="{"text" if kind in ("model", "revision", "text") else ""}">{escape(label)}</th>'
            for _, label, kind in columns
        )
        body = "".join(_leaderboard_row(r, columns, model_links) for r in group)
        out.append(f'<table class="leaderboard sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    return "".join(out)


def _leaderboard_row(r: Record, columns: Sequence[tuple[str, str, str]], model_links: bool) -> str:
    cells = []
    for key, _, kind in columns:
        if key == "level":
            load = r.get("reference_load")
            level = f"{r['reference_load_type']}={load:g}" if load is not None else "–"
            cells.append(f'<td class="text" data-sort="{load if load is not None else ""}">{escape(level)}</td>')
        elif key == "rank_interval":
            low, high = r.get("rank_low"), r.get("rank_high")
            span = "–" if low is None else f"{low}" if low == high else f"{low}–{high}"
            cells.append(f'<td class="text" data-sort="{low if low is not None else ""}">{escape(span)}</td>')
        elif kind == "model":
            model = str(r["model_id"])
            text = escape(model)
            if model_links:
                text = f'<a href="?model_id={escape(quote(model, safe=""))}">{text}</a>'
            cells.append(f'<td class="text">{text}</td>')
        elif kind == "revision":
            revision = str(r.get(key) or "")
            cells.append(f'<td class="text"><code title="{escape(revision)}">{escape(revision[:12])}</code></td>')
        elif kind == "text":
            cells.append(f'<td class="text">{escape(_fmt(r.get(key), kind))}</td>')
        else:
            value = r.get(key)
            sort = "" if value is None else repr(value) if isinstance(value, int | float) else escape(str(value))
            cells.append(f'<td data-sort="{sort}">{escape(_fmt(value, kind))}</td>')
    return f'<tr data-model="{escape(str(r["model_id"]))}">{"".join(cells)}</tr>'


def records_table(table_id: str, rows: Sequence[Mapping[str, Any]], formatters: Mapping[str, Callable] = {}) -> str:
    """A sortable table of arbitrary records (every column the rows have, in their order)."""
    if not rows:
        return ""
    names = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f'<th class="text">{escape(n.replace("_", " "))}</th>' for n in names)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="text">{escape(formatters.get(n, _plain_text)(r.get(n)))}</td>' for n in names)
        + "</tr>"
        for r in rows
    )
    return f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _plain_text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _verdicts(data: Mapping[str, Any]) -> str:
    comparisons = data["comparisons"]
    if not comparisons:
        return _none("No comparisons yet.")
    counts: dict[str, dict[str, int]] = {}
    for c in comparisons:
        per_model = counts.setdefault(c["model_id"], {})
        per_model[c["verdict"]] = per_model.get(c["verdict"], 0) + 1
    verdict_names = ("regression", "improvement", "no_change", "no_baseline")
    summary = records_table(
        "verdict-counts", [{"model": m, **{v: n.get(v, 0) for v in verdict_names}} for m, n in sorted(counts.items())]
    )
    fig = figures.verdicts(comparisons)
    judged = [c for c in comparisons if c["verdict"] in ("regression", "improvement")]
    wanted = ("model_id", "revision", "kind", "metric", "verdict", "value", "baseline_value", "delta", "ci_low",
              "ci_high", "method", "n_pairs", "n_fixed", "n_broken", "mde", "baseline_model_id",
              "baseline_revision")  # fmt: skip
    detail = records_table(
        "verdicts",
        [{k: c[k] for k in wanted if k in c} for c in judged],
        {"revision": _rev, "baseline_revision": _rev},
    )
    if not judged:
        detail = _none("No regressions or improvements.")
    return summary + figure_block("fig-verdicts", fig) + detail


def discovery_section(night: Mapping[str, Any]) -> str:
    """The latest nightly discovery: what it found, the watch-list entries it could not look at and the
    checkpoints it stopped retrying — a night that evaluated nothing new must say whether it could look at all."""
    errors, exhausted = night.get("errors") or [], night.get("exhausted") or []
    summary = (
        f"{night.get('new', 0)} new checkpoint(s) planned, {night.get('already_evaluated', 0)} already evaluated, "
        f"{len(errors)} watch-list entr{'y' if len(errors) == 1 else 'ies'} not looked at, "
        f"{len(exhausted)} checkpoint(s) no longer retried."
    )
    body = f'<p class="{"notice error" if errors or exhausted else "meta"}">{escape(summary)}</p>'
    if errors:
        body += records_table("discovery-errors", [{"entry": e.get("entry"), "why": e.get("message")} for e in errors])
    if exhausted:
        rows = [{"checkpoint": x.get("ref"), "failed runs": x.get("failures"), "last error": x.get("last_error")}
                for x in exhausted]  # fmt: skip
        body += records_table("discovery-exhausted", rows)
    return section(
        f"Discovery of the latest night ({night.get('logical_date', '?')})",
        body,
        "Watch-list entries that failed (the Hub down past its retries, a bad entry) fail their night; a checkpoint "
        "whose runs failed too often is no longer rediscovered until its revision changes.",
    )


def _rev(value: Any) -> str:
    return str(value or "")[:12]


def _none(text: str) -> str:
    return f'<p class="none">{escape(text)}</p>'
