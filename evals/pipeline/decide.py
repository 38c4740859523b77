"""The decide step: tonight's challengers against the champion, written to ``decisions``; approvals recorded.

The interface the orchestration (human-in-the-loop approval, champion Asset) calls:
:func:`decide_step` and :func:`record_approval`. Both take and return strict JSON.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError, RunNotFound, ValidationFailed

if TYPE_CHECKING:
    import pyarrow as pa

    from evals.pipeline.serving import ServingConfig
    from evals.warehouse import RunRecord, Warehouse
    from evals.warehouse.views import ReadModel

log = logging.getLogger(__name__)
progress = logging.getLogger("evals.progress")

APPROVAL_FIELDS = ("approval_outcome", "approver", "approved_at", "approval_reason")
CHAMPION_OUTCOMES = ("approved", "manual")  # approval outcomes that make the challenger the new champion


def decide_step(plan: list[dict[str, Any]], context: dict[str, Any]) -> dict[str, Any]:
    """Decide tonight's published challengers of ``plan`` against the champion's run of the same night.

    Returns ``{"configured", "decisions": [{decision_id, challenger, outcome, summary}], "promote": [{decision_id,
    challenger, challenger_run_id, summary, report}]}``; ``configured`` is False (and nothing is done) without
    ``EVALS_SERVING``. The rows pass the ``decisions`` GX suite before they are written.
    """
    from evals.pipeline.serving import load_serving
    from evals.pipeline.steps import json_safe, planned_runs
    from evals.report.text import decision_markdown
    from evals.warehouse import Warehouse

    config = load_serving()
    if config is None:
        return {"configured": False, "decisions": [], "promote": []}
    warehouse = Warehouse.from_settings()
    # The serving decision weighs accuracy with latency, capacity and cost: a run without a latency scenario (e.g.
    # the guardrail suite's own run) is evidence for other criteria, not a challenger of its own.
    run_ids = [
        found.run_id
        for _, _, found in planned_runs(warehouse, plan, context)
        if found is not None and found.status == "published" and found.scenario is not None
    ]
    rows = decide_runs(run_ids, config, warehouse=warehouse, write=True)
    report = warehouse.report_uri
    if rows:
        from evals.report.build import publish_report

        report = publish_report(warehouse)  # the report's Decision section shows tonight's decisions
        from evals.report.notify import notify_decisions

        notify_decisions(rows, report=report, settings=warehouse.settings)
    decisions, promote = [], []
    for row in rows:
        summary = decision_markdown(row, report=report)
        challenger = f"{row['model_id']}@{row['revision']}"
        decisions.append({"decision_id": row["decision_id"], "challenger": challenger, "outcome": row["outcome"],
                          "summary": summary})  # fmt: skip
        if row["outcome"] == "promote":
            promote.append({"decision_id": row["decision_id"], "challenger": challenger,
                            "challenger_run_id": row["run_id"], "summary": summary, "report": report})  # fmt: skip
    return json_safe({"configured": True, "decisions": decisions, "promote": promote})


def decide_runs(
    run_ids: Sequence[str], config: ServingConfig, *, warehouse: Warehouse | None = None, write: bool = False
) -> list[dict[str, Any]]:
    """``decisions`` rows of the given published runs (the champion's own runs are not challengers)."""
    from evals.analysis.leaderboard import connect
    from evals.warehouse import Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    con = connect(warehouse)
    try:
        rows = _decide(con, list(dict.fromkeys(run_ids)), config, warehouse.settings)
    finally:
        con.close()
    if write:
        for row in rows:
            write_decisions(warehouse, row["run_id"], row["eval_date"], [row])
    return rows


def decide_latest(
    config: ServingConfig, *, warehouse: Warehouse | None = None, day: dt.date | None = None
) -> list[dict[str, Any]]:
    """The decisions of the latest night with published runs (or of ``day``), computed now and not written."""
    from evals.analysis.leaderboard import connect
    from evals.warehouse import Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    con = connect(warehouse)
    try:
        if day is None:
            latest = con.execute("select max(eval_date) from runs").fetchone()
            day = latest[0] if latest else None
        if day is None:
            return []
        run_ids = [r[0] for r in con.execute("select run_id from runs where eval_date = $d", {"d": day}).fetchall()]
        return _decide(con, run_ids, config, warehouse.settings)
    finally:
        con.close()


def _decide(con: ReadModel, run_ids: list[str], config: ServingConfig, settings: Any) -> list[dict[str, Any]]:
    from evals.analysis.decision import decide
    from evals.pipeline.evidence import champion_identity, champion_run, evidence, published_run

    identity = champion_identity(con, config.champion)
    rows = []
    for run_id in run_ids:
        run = published_run(con, run_id)
        if run is None:
            raise RunNotFound(f"run {run_id} is not published; only published runs are decided")
        if run["model_id"] == identity[0] and (identity[1] is None or run["revision"] == identity[1]):
            continue  # the champion itself
        champ = champion_run(con, identity, run)
        found = evidence(con, run, champ, config, settings.leaderboard_min_goodput)
        decision = decide(found, config.policy, config.traffic, config.cost)
        row = _row(run, champ, config, decision, settings.serving_approval_url)
        progress.info("decide: %s@%s vs %s: %s (%s)", run["model_id"], run["revision"][:12], config.champion,
                      decision.outcome.upper(), decision.reason)  # fmt: skip
        rows.append(row)
    return rows


def _row(
    run: Mapping[str, Any], champ: Mapping[str, Any] | None, config: ServingConfig, decision: Any, url: str | None
) -> dict[str, Any]:
    policy = config.policy
    champion_run_id = champ["run_id"] if champ else None
    key = f"{run['run_id']}|{champion_run_id}|{policy.name}@{policy.version}"
    decision_id = hashlib.sha256(key.encode()).hexdigest()[:16]
    approval_url = None
    if url and decision.outcome == "promote":
        approval_url = url.format(dag_id=run.get("dag_id") or "", dag_run_id=run.get("dag_run_id") or "",
                                  decision_id=decision_id)  # fmt: skip
    return {
        "run_id": run["run_id"],
        "decision_id": decision_id,
        "model_id": run["model_id"],
        "revision": run["revision"],
        "eval_date": run["eval_date"],
        "suite": run["suite"],
        "scenario": run["scenario"],
        "champion": config.champion,
        "champion_run_id": champion_run_id,
        "champion_model_id": champ["model_id"] if champ else None,
        "champion_revision": champ["revision"] if champ else None,
        "policy_name": policy.name,
        "policy_version": policy.version,
        "outcome": decision.outcome,
        "reason": decision.reason,
        "criteria": json.dumps([c.to_json() for c in decision.criteria], allow_nan=False),
        "challenger_monthly_usd": decision.challenger_monthly_usd,
        "champion_monthly_usd": decision.champion_monthly_usd,
        "decided_at": dt.datetime.now(dt.UTC),
        "approval_url": approval_url,
        **dict.fromkeys(APPROVAL_FIELDS),
    }


# ---------------------------------------------------------------------------------------------- writing


def write_decisions(warehouse: Warehouse, run_id: str, eval_date: dt.date, rows: list[dict[str, Any]]) -> int:
    """Replace one challenger run's ``decisions`` rows, through the schema and the ``decisions`` GX suite.

    An approval already given to the same decision (same runs and policy) is kept when it is decided again.
    """
    from evals.warehouse.rows import conform_run_table

    record = warehouse.find_run(run_id, area="published", eval_date=eval_date)
    if record is None or record.status != "published":
        raise RunNotFound(f"no published run {run_id} in {warehouse.uri}")
    existing = warehouse.read_run_table("decisions", record)
    given = {r["decision_id"]: r for r in (existing.to_pylist() if existing is not None else [])}
    rows = [
        {**row, **{k: given[row["decision_id"]][k] for k in APPROVAL_FIELDS}}
        if row["decision_id"] in given and row.get("approval_outcome") is None
        else row
        for row in rows
    ]
    table = conform_run_table("decisions", rows, record)
    validate_decisions(record, table, warehouse.settings)
    return warehouse.write_table(record, "decisions", table)


def validate_decisions(record: RunRecord, table: pa.Table, settings: Any) -> None:
    """Run the ``decisions`` GX suite; raise :class:`ValidationFailed` (nothing written) when a check fails."""
    from evals.validation.frames import CHECK_PREFIX
    from evals.validation.report import failures_of
    from evals.validation.runtime import runtime
    from evals.validation.suites import INDEX_COLUMNS, decisions_suite

    frame = table.to_pandas()
    frame[f"{CHECK_PREFIX}criteria_valid"] = [_criteria_valid(text) for text in frame["criteria"]]
    frame[f"{CHECK_PREFIX}outcome_consistent"] = [
        _implied(text) == outcome for text, outcome in zip(frame["criteria"], frame["outcome"], strict=True)
    ]
    frame[f"{CHECK_PREFIX}not_self"] = (frame["champion_run_id"] != frame["run_id"]).fillna(True).astype(bool)
    gx = runtime()
    with gx.lock:
        result = gx.validate(
            "decisions",
            "decisions:1",
            decisions_suite,
            frame,
            parameters={"model_ids": [record.model_id], "revisions": [record.revision]},
            run_name=f"{record.run_id}:decisions",
            index_columns=INDEX_COLUMNS["decisions"],
            sample_rows=settings.validation_sample_rows,
        )
    if not result.success:
        failures = failures_of("decisions", result)
        raise ValidationFailed(f"decisions of run {record.run_id}: " + "; ".join(f.describe() for f in failures))


def _criteria_valid(text: str) -> bool:
    from evals.analysis.decision import STATUSES

    try:
        items = json.loads(text)
    except (TypeError, ValueError):
        return False
    return isinstance(items, list) and all(
        isinstance(c, dict) and c.get("name") and c.get("status") in STATUSES for c in items
    )


def _implied(text: str) -> str | None:
    from evals.analysis.decision import Criterion, combine

    try:
        items = json.loads(text)
        return combine([Criterion(str(c["name"]), str(c["status"]), None) for c in items])[0]
    except (TypeError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------------------------------------- approvals


def record_approval(
    decision_id: str, outcome: str, *, approver: str | None, at: dt.datetime, reason: str | None = None
) -> dict[str, Any]:
    """Record the answer to a decision's approval (``pending | approved | rejected | timed_out | manual``).

    Rewrites that run's ``decisions`` rows (one Iceberg overwrite). Returns ``{"decision_id", "outcome",
    "champion"}``, the champion being the challenger's ref when approved (or manual), else None.
    """
    import pyarrow.compute as pc

    from evals.schemas import APPROVAL_OUTCOMES
    from evals.warehouse import Warehouse

    if outcome not in APPROVAL_OUTCOMES:
        raise ConfigError(f"approval outcome {outcome!r} is not one of {', '.join(APPROVAL_OUTCOMES)}")
    warehouse = Warehouse.from_settings()
    found = warehouse.read_table("decisions", filter=pc.field("decision_id") == decision_id).to_pylist()
    if not found:
        raise RunNotFound(f"no decision {decision_id} in {warehouse.uri}")
    decided = found[0]
    record = warehouse.find_run(decided["run_id"], area="published", eval_date=decided["eval_date"])
    if record is None or record.status != "published":
        raise RunNotFound(f"decision {decision_id}: run {decided['run_id']} is no longer published")
    rows = (warehouse.read_run_table("decisions", record) or _empty()).to_pylist()
    moment = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    answer = {"approval_outcome": outcome, "approver": approver, "approved_at": moment, "approval_reason": reason}
    rows = [{**r, **answer} if r["decision_id"] == decision_id else r for r in rows]
    write_decisions(warehouse, record.run_id, record.eval_date, rows)
    champion = f"{record.source}:{record.model_id}@{record.revision}" if outcome in CHAMPION_OUTCOMES else None
    progress.info("approval of decision %s: %s by %s%s", decision_id, outcome, approver or "-",
                  f" (new champion {champion})" if champion else "")  # fmt: skip
    return {"decision_id": decision_id, "outcome": outcome, "champion": champion}


def promote(model: str, reason: str, *, approver: str | None, config: ServingConfig) -> dict[str, Any]:
    """A manual decision: the latest decision of ``model`` (a model id or ``model@revision``), decided and written
    now if the night did not write one, recorded with approval outcome ``manual``."""
    from evals.analysis.leaderboard import connect
    from evals.warehouse import Warehouse

    model_id, _, revision = model.partition("@")
    warehouse = Warehouse.from_settings()
    con = connect(warehouse)
    try:
        latest = con.execute(
            """select run_id from runs where model_id = $m and ($r = '' or revision like $r || '%')
               order by logical_date desc, finished_at desc nulls last limit 1""",
            {"m": model_id, "r": revision},
        ).fetchone()
        if latest is None:
            raise RunNotFound(f"no published run of {model} in {warehouse.uri}")
        stored = con.execute(
            "select decision_id from decisions where run_id = $run order by decided_at desc limit 1", {"run": latest[0]}
        ).fetchone()
    finally:
        con.close()
    if stored is None:
        rows = decide_runs([latest[0]], config, warehouse=warehouse, write=True)
        if not rows:
            raise ConfigError(f"{model} is the champion ({config.champion}); nothing to promote")
        decision_id = rows[0]["decision_id"]
    else:
        decision_id = stored[0]
    return record_approval(decision_id, "manual", approver=approver, at=dt.datetime.now(dt.UTC), reason=reason)


def _empty() -> pa.Table:
    from evals.schemas import arrow_schema

    return arrow_schema("decisions").empty_table()
