"""Server-rendered HTML of the Results page: the leaderboard table and per-model trend charts, self-contained."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from html import escape
from typing import Any
from urllib.parse import quote

from evals.ui.queries import Results
from evals.ui.svg import Point, line_chart

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2rem; color: #1d2433; background: #fff; }
h1 { font-size: 1.35rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
.meta { color: #5b6475; font-size: .85rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid #e3e6ec; text-align: right; white-space: nowrap; }
th { background: #f4f6f9; } td.text, th.text { text-align: left; }
code { font-size: .85rem; } a { color: #1f5fbf; }
.model { margin: 1rem 0; } .charts { display: flex; flex-wrap: wrap; gap: .8rem; }
.chart { border: 1px solid #e3e6ec; border-radius: 4px; font-size: 10px; fill: #5b6475; }
.chart .title { font-size: 12px; fill: #1d2433; } .chart .na { font-size: 12px; }
.axis { stroke: #b8bfcc; fill: none; } .line { stroke: #1f5fbf; stroke-width: 2; fill: none; }
.dot { fill: #1f5fbf; } .notice { padding: .8rem 1rem; border-radius: 4px; background: #fff6e0; max-width: 60rem; }
.notice.error { background: #fde8e8; }
"""

# (header, key, formatter, tooltip) of each leaderboard column after model and revision.
Formatter = Callable[[Any], str]


def _num(digits: int) -> Formatter:
    return lambda v: "–" if v is None else f"{v:,.{digits}f}"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _usd(v: Any) -> str:
    return "–" if v is None else f"${v:,.4g}"


COLUMNS: list[tuple[str, str, Formatter]] = [
    ("Accuracy", "accuracy", _num(3)),
    ("P95 TTFT (ms)", "ttft_p95_ms", _num(1)),
    ("P95 E2E (ms)", "e2e_p95_ms", _num(1)),
    ("Tokens/s", "output_tokens_per_s", _num(1)),
    ("Goodput", "goodput", _pct),
    ("USD / 1M tokens", "usd_per_1m_output_tokens", _usd),
]

TREND_CHARTS: list[tuple[str, str, Callable[[float], str]]] = [
    ("Headline accuracy", "accuracy", "{:.3f}".format),
    ("P95 TTFT (ms)", "ttft_p95_ms", "{:,.1f}".format),
    ("USD / 1M output tokens", "usd_per_1m_output_tokens", "${:,.4g}".format),
]


def document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def notice_page(title: str, message: str, *, error: bool = False, link: tuple[str, str] | None = None) -> str:
    css = "notice error" if error else "notice"
    more = f' <a href="{escape(link[0])}">{escape(link[1])}</a>' if link else ""
    return document(title, f'<h1>{escape(title)}</h1><p class="{css}">{escape(message)}{more}</p>')


def results_page(results: Results, model_id: str | None = None) -> str:
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        "<h1>Checkpoint evaluation results</h1>",
        f'<p class="meta">Warehouse <code>{escape(results.warehouse)}</code> · read {generated} · '
        'JSON: <a href="api/leaderboard">leaderboard</a>, <a href="api/trends">trends</a></p>',
    ]
    if not results.leaderboard:
        body.append(
            '<p class="notice">No published runs in this warehouse yet. Run <code>make demo</code>, or trigger the '
            "<code>evals_nightly</code> or <code>evals_manual</code> DAG; results appear here once a run is "
            "published.</p>"
        )
    else:
        body.append("<h2>Leaderboard</h2>")
        body.append(_leaderboard_table(results.leaderboard))
    body.append(_trends_section(results, model_id))
    return document("Evaluation results", "".join(body))


def _leaderboard_table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h, _, _ in COLUMNS)
    out = [
        '<table id="leaderboard"><thead><tr><th class="text">Model</th><th class="text">Revision</th>'
        f'<th class="text">Eval date</th>{head}</tr></thead><tbody>'
    ]
    for row in rows:
        model = str(row["model_id"])
        revision = str(row["revision"] or "")
        accuracy_tip = f"suite {row['suite']}, {row['n_tasks']} tasks" if row.get("suite") else ""
        latency_tip = (
            f"scenario {row['scenario']}, {row['load_type']} {row['load']:g}" if row.get("scenario") is not None else ""
        )
        cells = []
        for _, key, fmt in COLUMNS:
            tip = accuracy_tip if key == "accuracy" else latency_tip
            cells.append(f'<td title="{escape(tip)}">{escape(fmt(row.get(key)))}</td>')
        out.append(
            f'<tr><td class="text"><a href="?model_id={escape(quote(model, safe=""))}#trends">{escape(model)}</a>'
            f'</td><td class="text"><code title="{escape(revision)}">{escape(revision[:12])}</code></td>'
            f'<td class="text">{escape(str(row["eval_date"] or ""))}</td>{"".join(cells)}</tr>'
        )
    out.append("</tbody></table>")
    return "".join(out)


def _trends_section(results: Results, model_id: str | None) -> str:
    if not results.trends:
        if model_id is not None:
            return f'<h2 id="trends">Trends</h2><p class="notice">No runs of model <code>{escape(model_id)}</code>.</p>'
        return ""
    title = "Trends" if model_id is None else f"Trends of {model_id}"
    out = [f'<h2 id="trends">{escape(title)}</h2>']
    if model_id is not None:
        out.append('<p class="meta"><a href="./">all models</a></p>')
    for model, points in results.trends.items():
        out.append(f'<section class="model"><h3>{escape(model)}</h3><div class="charts">')
        for chart_title, key, fmt in TREND_CHARTS:
            series = [
                Point(dt.date.fromisoformat(p["eval_date"]), p[key], str(p["revision"] or "")[:12]) for p in points
            ]
            out.append(line_chart(chart_title, series, fmt))
        out.append("</div></section>")
    return "".join(out)
