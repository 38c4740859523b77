"""The report's Decision section: tonight's serving decisions per challenger, read and drawn as HTML."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from evals.report.sections import _fmt, _rev, section

if TYPE_CHECKING:
    from evals.warehouse.views import ReadModel

Record = dict[str, Any]


def latest_decisions(con: ReadModel) -> list[Record]:
    """The serving decisions of the latest night that has any (promote first). A night is a DAG run's logical date:
    two nights on one calendar day (a rerun, the demo) are two nights."""
    cursor = con.execute(
        """with d as (
               select d.* exclude (schema_version), r.logical_date as _night
               from decisions d join runs r on d.run_id = r.run_id and d.eval_date = r.eval_date
           )
           select * exclude (_night) from d where _night = (select max(_night) from d)
           order by case outcome when 'promote' then 0 when 'hold' then 1 else 2 end, model_id, suite, scenario"""
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


DECISION_NOTE = (
    "Each challenger of the night against the champion's run of the same night. Non-inferiority: the lower bound of "
    "the one-sided CI of challenger - champion (paired per question) must be above -margin. promote: every criterion "
    "passed; hold: a criterion could not tell (more data needed); reject: a criterion failed."
)


def decision_section(rows: Sequence[Record]) -> str:
    """The Decision section: outcome per challenger, every criterion against its margin or limit, monthly costs,
    and a pending approval (with its link when one is configured)."""
    from evals.report.text import approval_text, criterion_cells, decision_criteria

    blocks = []
    for r in rows:
        outcome = str(r["outcome"])
        css = {"promote": "improvement", "reject": "regression"}.get(outcome, "")
        title = (
            f'<h3 class="decision" data-outcome="{escape(outcome)}"><span class="{css}">{escape(outcome.upper())}'
            f"</span> {escape(str(r['model_id']))}@{escape(_rev(r['revision']))} vs champion "
            f'{escape(str(r["champion"]))} <span class="meta">({escape(str(r.get("suite")))}/'
            f"{escape(str(r.get('scenario')))}, policy {escape(str(r['policy_name']))} v"
            f"{escape(str(r['policy_version']))})</span></h3>"
        )
        body = "".join(
            "<tr>"
            + f'<td class="text">{escape(str(c["name"]))}</td>'
            + "".join(f"<td>{escape(cell)}</td>" for cell in criterion_cells(c))
            + f'<td class="text {_STATUS_CSS.get(c["status"], "")}">{escape(str(c["status"]))}</td>'
            + f'<td class="text">{escape(str(c.get("detail") or ""))}</td></tr>'
            for c in decision_criteria(r)
        )
        head = "".join(
            f'<th class="{"text" if h in ("Criterion", "Status", "Detail") else ""}">{h}</th>'
            for h in ("Criterion", "Estimate", "One-sided CI", "Margin / limit", "Status", "Detail")
        )
        table = f'<table class="decision-criteria"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        mine, theirs = _fmt(r.get("challenger_monthly_usd"), "usd"), _fmt(r.get("champion_monthly_usd"), "usd")
        costs = f'<p class="meta">Monthly cost at the stated traffic: challenger {mine}, champion {theirs}.</p>'
        approval = approval_text(r)
        if approval and r.get("approval_url") and r.get("approval_outcome") in (None, "pending"):
            url = escape(str(r["approval_url"]))
            approval_html = f'<p class="notice">Approval pending: <a href="{url}">answer it in Airflow</a></p>'
        elif approval:
            approval_html = f'<p class="notice">{escape(approval)}</p>'
        else:
            approval_html = ""
        why = f"<p>{escape(str(r['reason']))}</p>"
        blocks.append(f'<div class="decision-block">{title}{why}{table}{costs}{approval_html}</div>')
    return section(f"Decision ({rows[0].get('eval_date')})", "".join(blocks), DECISION_NOTE)


_STATUS_CSS = {"pass": "improvement", "fail": "regression"}
