"""The at-a-glance table: per model, accuracy, guardrails, P95 TTFT, P99/P50, errors and cost at the SLO side by side,
and how much P95 TTFT and the tail ratio moved over the revision's last nights — read from the one leaderboard."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from evals.analysis.measures import CV_MIN_NIGHTS, CV_NIGHTS, GUARDRAIL_SUITE

Record = Mapping[str, Any]
Z95 = 1.959963984540054  # two-sided 95 % normal quantile

NOTE = (
    "One row per model of each board with a load scenario (the guardrail suite's own board is the Guardrails column "
    "here). Guardrails: the balanced guardrail score of the same revision's latest guardrails run (± 95% CI). P95 "
    "TTFT and P99/P50 at the reference load. Errors: failures other than timeouts over every request of the night's "
    "load levels (≤ the Wilson 95% upper bound). Cost: USD per 1M output tokens at the SLO. Night CV: coefficient "
    f"of variation over the revision's last {CV_NIGHTS} nights (shown from {CV_MIN_NIGHTS} nights)."
)


def _num(spec: str, suffix: str = "") -> Callable[[Record, str], str]:
    return lambda r, key: f"{r[key]:{spec}}{suffix}"


def _guardrails(r: Record, key: str) -> str:
    se = r.get("guardrail_score_se")
    return f"{r[key]:.3f}" + (f" ± {Z95 * se:.3f}" if se else "")


def _errors(r: Record, key: str) -> str:
    high = r.get("error_rate_ci_high")
    return f"{r[key]:.1%}" + (f" (≤ {high:.1%})" if high is not None else "")


def _cv(r: Record, key: str) -> str:
    return f"{r[key]:.1%} ({r.get('cv_nights')} nights)"


# (leaderboard column, header, cell text of a row whose value is not null)
COLUMNS: tuple[tuple[str, str, Callable[[Record, str], str]], ...] = (
    ("accuracy", "Accuracy", _num(".3f")),
    ("guardrail_score", "Guardrails", _guardrails),
    ("ttft_p95_ms", "P95 TTFT", _num(",.1f", " ms")),
    ("ttft_tail_ratio", "P99/P50 TTFT", _num(".2f", "×")),
    ("error_rate", "Errors", _errors),
    ("usd_per_1m_at_slo", "Cost at SLO", _num(",.4g", " $/1M tok")),
    ("ttft_p95_cv", "P95 TTFT night CV", _cv),
    ("ttft_tail_ratio_cv", "P99/P50 night CV", _cv),
)


def boards(rows: Sequence[Record]) -> dict[tuple[Any, Any], list[Record]]:
    """The leaderboard's rows per (suite, scenario), boards with a load scenario only (in the board's rank order)."""
    out: dict[tuple[Any, Any], list[Record]] = {}
    for r in rows:
        if r.get("scenario") is not None and r.get("suite") != GUARDRAIL_SUITE:
            out.setdefault((r.get("suite"), r["scenario"]), []).append(r)
    return out


def glance_tables(rows: Sequence[Record], *, model_links: bool = False) -> str:
    """One plain, sortable table per board of :func:`boards`; empty text when there is none."""
    found = boards(rows)
    out = []
    for (suite, scenario), group in found.items():
        if len(found) > 1:
            out.append(f"<h3>Suite {escape(str(suite or '–'))} · scenario {escape(str(scenario))}</h3>")
        head = '<th class="text">Model</th>' + "".join(f"<th>{escape(label)}</th>" for _, label, _ in COLUMNS)
        body = "".join(_row(r, model_links) for r in group)
        out.append(f'<table class="glance sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    return "".join(out)


def _row(r: Record, model_links: bool) -> str:
    model = str(r["model_id"])
    name = escape(model)
    if model_links:
        name = f'<a href="?model_id={escape(quote(model, safe=""))}">{name}</a>'
    cells = [f'<td class="text">{name}</td>']
    for key, _, text in COLUMNS:
        value = r.get(key)
        sort = "" if value is None else repr(value)
        cells.append(
            f'<td data-sort="{sort}" data-column="{key}">{escape("–" if value is None else text(r, key))}</td>'
        )
    return f'<tr data-model="{escape(model)}">{"".join(cells)}</tr>'
