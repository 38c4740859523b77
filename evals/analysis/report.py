"""The comparison report: one self-contained HTML file (inline SVG, no network) built from the warehouse."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.analysis import charts

if TYPE_CHECKING:
    import duckdb

    from evals.warehouse import Warehouse

log = logging.getLogger(__name__)

REPORT_KEY = "report.html"  # under the warehouse's _reports/ prefix
CDF_POINTS = 200  # points kept per CDF line: enough to draw, small enough to embed

# Latest published latency run per model (the leaderboard's definition), its samples at the leaderboard's load.
CDF_SQL = """
with lat_runs as (
    select run_id, model_id, eval_date from runs where scenario is not null and run_id in (select run_id from latency)
    qualify row_number() over (partition by model_id order by logical_date desc, finished_at desc nulls last) = 1
)
select r.model_id, s.load_type, s.load, (s.first_token_s - s.sent_s) * 1000 as ttft_ms,
       (s.finished_s - s.sent_s) * 1000 as e2e_ms
from latency_samples s
join lat_runs r on s.run_id = r.run_id and s.eval_date = r.eval_date
join leaderboard b on b.model_id = r.model_id and b.load_type = s.load_type and b.load = s.load
where s.ok and s.sent_s is not null and s.first_token_s is not null and s.finished_s is not null
"""

NIGHT_SQL = """
select model_id, revision, kind, baseline_model_id, baseline_revision, metric, value, baseline_value, delta,
       ci_low, ci_high, alpha, verdict
from comparisons where eval_date = $night
order by verdict, model_id, kind, metric
"""

TREND_METRICS = (
    ("accuracy", "Headline accuracy", "accuracy"),
    ("ttft_p95_ms", "P95 TTFT (ms)", "ms"),
    ("e2e_p95_ms", "P95 E2E (ms)", "ms"),
    ("usd_per_1m_output_tokens", "Cost (USD / 1M output tokens)", "USD"),
)

LEADERBOARD_HEAD = (
    ("model_id", "Model"),
    ("revision", "Revision"),
    ("eval_date", "Date"),
    ("accuracy", "Accuracy"),
    ("n_tasks", "Tasks"),
    ("level", "Load"),
    ("ttft_p95_ms", "P95 TTFT ms"),
    ("e2e_p95_ms", "P95 E2E ms"),
    ("output_tokens_per_s", "Output tok/s"),
    ("goodput", "Goodput"),
    ("usd_per_1m_output_tokens", "USD / 1M tok"),
)


def build_report(
    warehouse: Warehouse | None = None,
    out_path: str | Path = "report.html",
    *,
    publish: bool = False,
    max_models: int = 12,
) -> Path:
    """Write the report to ``out_path``; with ``publish`` also to ``<warehouse>/_reports/report.html``."""
    from evals.analysis.views import connect
    from evals.warehouse import Warehouse
    from evals.warehouse.keys import REPORTS_PREFIX

    warehouse = warehouse or Warehouse.from_settings()
    con = connect(warehouse)
    try:
        data = report_data(con, min_goodput=warehouse.settings.leaderboard_min_goodput, max_models=max_models)
    finally:
        con.close()
    data["warehouse"] = warehouse.uri
    html = render(data).encode()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(html)
    if publish:
        warehouse.storage.write_bytes(f"{REPORTS_PREFIX}/{REPORT_KEY}", html)
        log.info("report published to %s/%s/%s", warehouse.uri, REPORTS_PREFIX, REPORT_KEY)
    log.info("report written to %s (%d bytes)", out, len(html))
    return out


def report_data(con: duckdb.DuckDBPyConnection, *, min_goodput: float, max_models: int = 12) -> dict[str, Any]:
    """Everything the report draws, JSON-safe (it is embedded in the page as ``#report-data``)."""
    from evals.ui import queries

    board = queries.leaderboard(con)
    shown = [row["model_id"] for row in board][:max_models]
    trends = queries.trends(con, min_goodput=min_goodput)
    night = con.execute("select max(eval_date) from comparisons").fetchall()[0][0]
    comparisons: list[dict[str, Any]] = []
    if night is not None:
        cursor = con.execute(NIGHT_SQL, {"night": night})
        names = [d[0] for d in cursor.description]
        comparisons = [queries._record(tuple(names), row) for row in cursor.fetchall()]
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "leaderboard": board,
        "scatter": [
            {"label": r["model_id"], "x": r["ttft_p95_ms"], "y": r["accuracy"], "cost": r["usd_per_1m_output_tokens"]}
            for r in board
            if r["accuracy"] is not None and r["ttft_p95_ms"] is not None
        ],
        "trends": {model: trends[model] for model in shown if model in trends},
        "cdfs": _cdfs(con, shown),
        "night": night.isoformat() if night is not None else None,
        "regressions": [c for c in comparisons if c["verdict"] == "regression"],
        "verdicts": _verdict_counts(comparisons),
        "models_omitted": max(0, len(board) - len(shown)),
    }


def _cdfs(con: duckdb.DuckDBPyConnection, models: Sequence[str]) -> dict[str, Any]:
    import numpy as np

    data = con.execute(CDF_SQL).fetchnumpy()
    out: dict[str, Any] = {"ttft_ms": {}, "e2e_ms": {}, "levels": {}, "n": {}, "p95": {}}
    model_ids = np.asarray(data["model_id"], dtype=object)
    for model in models:
        mask = model_ids == model
        if not mask.any():
            continue
        out["levels"][model] = f"{data['load_type'][mask][0]}={float(data['load'][mask][0]):g}"
        out["n"][model] = int(mask.sum())
        out["p95"][model] = {}
        for column in ("ttft_ms", "e2e_ms"):
            values = np.sort(np.asarray(data[column], dtype=float)[mask])
            out["p95"][model][column] = float(np.quantile(values, 0.95))
            keep = np.unique(np.linspace(0, len(values) - 1, min(CDF_POINTS, len(values))).round().astype(int))
            out[column][model] = [[float(values[i]), (i + 1) / len(values)] for i in keep]
    return out


def _verdict_counts(comparisons: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for c in comparisons:
        per_model = counts.setdefault(c["model_id"], {})
        per_model[c["verdict"]] = per_model.get(c["verdict"], 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------- rendering

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea}
.meta{color:#5b6575}table{border-collapse:collapse;margin:8px 0}th,td{padding:4px 8px;border-bottom:1px solid #e6e9ef;
text-align:right;white-space:nowrap}th{background:#f3f5f8}td.text,th.text{text-align:left}
.regression{color:#b3261e;font-weight:600}.improvement{color:#1b7f3b}.grid-charts{display:flex;flex-wrap:wrap;gap:12px}
svg text{font-size:11px;fill:#3a4454}svg .title{font-size:13px;font-weight:600}.axis{stroke:#6b7686;fill:none}
.grid{stroke:#eef0f4}.series,.line{fill:none;stroke-width:2}.pareto-line{fill:none;stroke:#1d2430;stroke-dasharray:5 3}
circle.pareto{stroke:#1d2430;stroke-width:2.5}circle.point{fill-opacity:.85}.ci-bar{stroke:#3a4454;stroke-width:3}
.zero{stroke:#b3261e}.na{fill:#8a94a6}.none{color:#5b6575;font-style:italic}
"""


def render(data: Mapping[str, Any]) -> str:
    """The HTML page of :func:`report_data`'s output."""
    sections = [
        _header(data),
        _section("Leaderboard", _leaderboard_table(data["leaderboard"]), "Latest published run per model."),
        _section(
            "Accuracy vs P95 TTFT",
            charts.scatter("Accuracy vs P95 TTFT (size and colour: cost)", data["scatter"]),
            "Dashed line and ringed points: the Pareto frontier (no model is both faster and more accurate).",
        ),
        _section("Trends", _trends(data["trends"]), "Per model and night, at each run's leaderboard load level."),
        _section("Latency distributions", _cdfs_html(data["cdfs"]), "Latest run per model, ok requests only."),
        _section(
            f"Regressions of the latest night ({data['night'] or 'no comparisons yet'})",
            _regressions(data["regressions"], data["verdicts"]),
        ),
    ]
    # JSON in a <script> block: escaping <, > and & keeps any model name from closing the element.
    payload = json.dumps(data, default=str, allow_nan=False)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>checkpoint-evals report</title>'
        f"<style>{STYLE}</style></head><body>{''.join(sections)}"
        f'<script type="application/json" id="report-data">{payload}</script></body></html>\n'
    )


def _header(data: Mapping[str, Any]) -> str:
    return (
        "<h1>checkpoint-evals report</h1>"
        f'<p class="meta">Warehouse {escape(str(data.get("warehouse", "")))} · generated {escape(data["generated_at"])}'
        f" · {len(data['leaderboard'])} model(s)</p>"
    )


def _section(title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="meta">{escape(note)}</p>' if note else ""
    return f"<section><h2>{escape(title)}</h2>{note_html}{body}</section>"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def _leaderboard_table(board: Sequence[Mapping[str, Any]]) -> str:
    if not board:
        return '<p class="none">No published runs.</p>'
    head = "".join(
        f'<th class="{"text" if key in ("model_id", "revision", "level") else ""}">{escape(label)}</th>'
        for key, label in LEADERBOARD_HEAD
    )
    rows = []
    for r in board:
        level = f"{r['load_type']}={r['load']:g}" if r.get("load") is not None else "–"
        cells = {**r, "revision": (r.get("revision") or "")[:12], "level": level}
        rows.append(
            f'<tr data-model="{escape(r["model_id"])}">'
            + "".join(
                f'<td class="text">{escape(str(cells[key]))}</td>'
                if key in ("model_id", "revision", "level")
                else f"<td>{_num(cells.get(key))}</td>"
                for key, _ in LEADERBOARD_HEAD
            )
            + "</tr>"
        )
    return f'<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _trends(trends: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    def day_fmt(x: float) -> str:
        return dt.date.fromordinal(max(1, round(x))).isoformat()

    charts_html = []
    for column, title, unit in TREND_METRICS:
        series = {
            model: [
                (float(dt.date.fromisoformat(p["eval_date"]).toordinal()), p[column])
                for p in points
                if p[column] is not None
            ]
            for model, points in trends.items()
        }
        series = {k: v for k, v in series.items() if v}
        charts_html.append(
            charts.multi_line(title, series, x_label="eval date", y_label=unit, x_fmt=day_fmt, x_single=3.0)
        )
    return f'<div class="grid-charts">{"".join(charts_html)}</div>'


def _cdfs_html(cdfs: Mapping[str, Any]) -> str:
    parts = []
    for column, title in (("ttft_ms", "TTFT CDF"), ("e2e_ms", "E2E latency CDF")):
        series = {
            f"{model} ({cdfs['levels'][model]})": [(x, y) for x, y in points] for model, points in cdfs[column].items()
        }
        parts.append(
            charts.multi_line(
                title,
                series,
                x_label="ms",
                y_label="share of requests",
                step=True,
                markers=False,
                width=560,
                height=300,
            )
        )
    return f'<div class="grid-charts">{"".join(parts)}</div>'


def _regressions(regressions: Sequence[Mapping[str, Any]], verdicts: Mapping[str, Mapping[str, int]]) -> str:
    summary = ""
    if verdicts:
        summary = (
            '<table id="verdicts"><thead><tr><th class="text">Model</th><th>regression</th><th>improvement</th>'
            "<th>no_change</th><th>no_baseline</th></tr></thead><tbody>"
            + "".join(
                f'<tr><td class="text">{escape(model)}</td>'
                + "".join(
                    f"<td>{counts.get(v, 0)}</td>" for v in ("regression", "improvement", "no_change", "no_baseline")
                )
                + "</tr>"
                for model, counts in sorted(verdicts.items())
            )
            + "</tbody></table>"
        )
    if not regressions:
        return summary + '<p class="none">No regressions.</p>'
    rows = []
    for r in regressions:
        ci = f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]" if r["ci_low"] is not None else "no CI (threshold only)"
        run = f"{r['model_id']}@{r['revision'][:12]}"
        base = f"{r['baseline_model_id']}@{(r['baseline_revision'] or '')[:12]}"
        cells = [
            *(f'<td class="text">{escape(text)}</td>' for text in (run, r["kind"], base, r["metric"])),
            *(f"<td>{_num(r[key])}</td>" for key in ("value", "baseline_value", "delta")),
            f"<td>{ci}</td>",
            f"<td>{charts.ci_bar(r['delta'], r['ci_low'], r['ci_high'])}</td>",
        ]
        rows.append(
            f'<tr class="regression" data-model="{escape(r["model_id"])}" data-metric="{escape(r["metric"])}">'
            f"{''.join(cells)}</tr>"
        )
    return (
        summary + '<table id="regressions"><thead><tr><th class="text">Run</th><th class="text">Kind</th>'
        '<th class="text">Baseline</th><th class="text">Metric</th><th>Value</th><th>Baseline</th><th>Delta</th>'
        f"<th>CI</th><th>CI vs 0</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
