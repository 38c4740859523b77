"""Server-rendered HTML of the Results page: filters, the shared figure sections, and one model's record."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from evals.ui.queries import Results

PROVENANCE_FIELDS = (
    "run_id", "eval_date", "revision", "status", "source", "checkpoint_uri", "dtype", "params", "backend", "hardware",
    "versions", "suite", "suite_version", "scenario", "scenario_version", "config_hash", "config", "dag_id",
    "dag_run_id", "started_at", "finished_at",
)  # fmt: skip


def document(title: str, body: str, *, scripts: bool = False) -> str:
    from evals.report.sections import STYLE

    tail = ""
    if scripts:
        # Relative to the app's mount (<base>/evals/): plotly.js from the plotly package's own file, never a CDN.
        tail = '<script src="static/plotly.min.js"></script><script src="static/figures.js"></script>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}{tail}</body></html>"
    )


def notice_page(title: str, message: str, *, error: bool = False, link: tuple[str, str] | None = None) -> str:
    css = "notice error" if error else "notice"
    more = f' <a href="{escape(link[0])}">{escape(link[1])}</a>' if link else ""
    return document(title, f'<h1>{escape(title)}</h1><p class="{css}">{escape(message)}{more}</p>')


def results_page(results: Results, model_id: str | None = None) -> str:
    from evals.report.sections import figure_sections, section

    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = "Checkpoint evaluation results" if model_id is None else f"Results of {model_id}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Warehouse <code>{escape(results.warehouse)}</code> · read {generated} · '
        'JSON: <a href="api/leaderboard">leaderboard</a>, <a href="api/trends">trends</a>'
        + (' · <a href="./">all models</a>' if model_id is not None else "")
        + "</p>",
        _filters(results, model_id),
    ]
    if not results.data["leaderboard"] and model_id is None:
        body.append(
            '<p class="notice">No published runs in this warehouse yet. Run <code>make demo</code>, or trigger the '
            "<code>evals_nightly</code> or <code>evals_manual</code> DAG; results appear here once a run is "
            "published.</p>"
        )
        return document("Evaluation results", "".join(body))
    if model_id is not None:
        if not results.history:
            body.append(f'<p class="notice">No runs of model <code>{escape(model_id)}</code>.</p>')
            return document(title, "".join(body))
        body.append(section("Latest published run: provenance", _provenance(results.provenance)))
        body.append(section("History", _history(results.history), "Every run of this model, newest first."))
    body.extend(figure_sections(results.data, model_links=True))
    return document(title, "".join(body), scripts=True)


def _filters(results: Results, model_id: str | None) -> str:
    """A plain GET form: works without script, keeps the chosen model."""
    chosen = results.data["filters"]
    parts = ['<form class="filters" method="get" action="">']
    if model_id is not None:
        parts.append(f'<input type="hidden" name="model_id" value="{escape(model_id)}">')
    for name in ("suite", "scenario"):
        options = ['<option value="">all</option>'] + [
            f'<option value="{escape(v)}"{" selected" if v == chosen.get(name) else ""}>{escape(v)}</option>'
            for v in results.options.get(name, [])
        ]
        parts.append(f'<label>{name}<select name="{name}">{"".join(options)}</select></label>')
    parts.append('<button type="submit">Apply</button></form>')
    return "".join(parts)


def _provenance(record: Mapping[str, Any] | None) -> str:
    if not record:
        return '<p class="none">No published run.</p>'
    rows = []
    for key in PROVENANCE_FIELDS:
        value = record.get(key)
        if value is None:
            continue
        if isinstance(value, dict):  # hardware, versions, config: only what was recorded
            value = {k: v for k, v in value.items() if v is not None}
        text = json.dumps(value, default=str)[1:-1].replace('"', "") if isinstance(value, dict) else str(value)
        rows.append(f"<dt>{escape(key.replace('_', ' '))}</dt><dd>{escape(text)}</dd>")
    return f'<dl class="provenance">{"".join(rows)}</dl>'


def _history(rows: Sequence[Mapping[str, Any]]) -> str:
    from evals.report.sections import records_table

    def short(value: Any) -> str:
        return str(value or "")[:12]

    return records_table("history", rows, {"revision": short, "run_id": short})
