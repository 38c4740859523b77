"""Evaluate planned checkpoints end to end — materialize, evaluate, publish, compare — for DAG tasks and the CLI.

Each step takes and returns small JSON-safe dicts (what XCom may carry: a :class:`~evals.pipeline.plan.PlanItem`
as ``to_xcom()``); frames travel through the warehouse's staging area. A step that fails records the run as
``failed`` (with the error) before re-raising, so one bad checkpoint is visible in the ``runs`` table and never
stops the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError, TerminalError, ValidationFailed
from evals.pipeline.plan import PlanItem, short
from evals.pipeline.publish import outcome_record, run_record
from evals.schemas import PARTITION_COLUMN

if TYPE_CHECKING:
    from evals.warehouse import RunRecord, Warehouse

log = logging.getLogger(__name__)
progress = logging.getLogger("evals.progress")  # one line per step: the demo and the Airflow log show these


class RunFailures(TerminalError):
    """Some checkpoints of a DAG run failed or were quarantined (the others were published)."""


# ---------------------------------------------------------------------------------------------------- steps


def plan_step(kind: str, params: Mapping[str, Any], context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The night's plan as XCom: ``nightly`` (the watch-list's new checkpoints) or ``manual`` (the trigger form)."""
    from evals.pipeline.plan import plan_manual, plan_nightly

    planner = {"nightly": plan_nightly, "manual": plan_manual}[kind]
    return [json_safe(item.to_xcom()) for item in planner(params, context)]


def materialize_step(item: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Safe fetch into the local cache; returns the item with ``path`` and the pinned ref."""
    from dataclasses import replace

    from evals.checkpoints import materialize

    planned = PlanItem.from_xcom(item)
    if planned.ref is None:
        raise ConfigError(f"checkpoint {planned.entry!r}: {planned.error}")
    with _step("materialize", planned, context):
        path = materialize(planned.ref)
    return json_safe(replace(planned, path=str(path)).to_xcom())


def evaluate_step(manifest: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Serve the checkpoint once, run the suite and the scenario, stage the rows; returns what publish needs."""
    from evals.pipeline.evaluate import evaluate_checkpoint
    from evals.warehouse import Warehouse

    planned = PlanItem.from_xcom(manifest)
    ref, options = planned.ref, planned.options
    if ref is None:
        raise ConfigError(f"checkpoint {planned.entry!r}: {planned.error}")
    with _step("evaluate", planned, context):
        path = Path(planned.path or "")
        if not path.is_dir():
            # Materialized on another worker (no shared cache): fetch it here, pinned to the same revision.
            from evals.checkpoints import materialize

            path = materialize(ref)
        outcome = evaluate_checkpoint(
            path,
            ref,
            suite=options.suite,
            scenario=options.scenario,
            limit=options.limit,
            backend=options.backend,
            endpoint=options.endpoint,
        )
        record = outcome_record(ref, options, context, outcome)
        staged = Warehouse.from_settings().stage(record.run_id, outcome.tables)
    return json_safe(
        {
            "ref": manifest["ref"],
            "options": manifest["options"],
            "record": record.to_json(),
            "staged": staged,
            "expected": outcome.expected.to_json(),
        }
    )


def publish_step(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the staged rows; publish them (data, then the runs row) or quarantine them."""
    from evals.checkpoints import CheckpointRef
    from evals.pipeline.publish import publish_record
    from evals.validation import Expected
    from evals.warehouse import RunRecord, Warehouse

    record = RunRecord.from_json(evaluation["record"])
    ref = CheckpointRef.from_dict(evaluation["ref"])
    started = time.monotonic()
    warehouse: Warehouse | None = None
    try:
        warehouse = Warehouse.from_settings()
        try:
            tables = warehouse.read_staged(evaluation["staged"])
        except FileNotFoundError:
            # An earlier attempt published and cleared the staging area, then died before reporting it.
            done = warehouse.find_run(record.run_id, eval_date=record.eval_date)
            if done is not None and done.status == "published":
                return {"run_id": done.run_id, "model_id": done.model_id, "status": done.status}
            raise TerminalError(f"{short(ref)}: staged results are gone; clear the evaluate task to redo it") from None
        published = publish_record(record, tables, Expected.from_json(evaluation["expected"]), warehouse=warehouse)
    except ValidationFailed:
        progress.info("publish: %s QUARANTINED (%.1fs)", short(ref), time.monotonic() - started)
        if warehouse is not None:
            warehouse.clear_staged(evaluation["staged"])
        raise
    except BaseException as exc:
        _record_failure(record, f"publish: {type(exc).__name__}: {exc}")
        raise
    warehouse.clear_staged(evaluation["staged"])
    progress.info("publish: %s published as run %s (%.1fs)", short(ref), published.run_id, time.monotonic() - started)
    return {"run_id": published.run_id, "model_id": published.model_id, "status": published.status}


def run_checkpoints(
    params: Mapping[str, Any], context: Mapping[str, Any], on_failure: Callable[[str, str], None]
) -> dict[str, Any]:
    """The manual DAG's steps in one process (``evals run``): every checkpoint materialized, evaluated and
    published in turn (one failing never stops the others: ``on_failure(checkpoint, error)``), then compared
    and summarized; the summary raises :class:`RunFailures` if any was not published."""
    plan = plan_step("manual", params, context)
    for item in plan:
        try:
            publish_step(evaluate_step(materialize_step(item, context), context))
        except Exception as exc:  # recorded as failed by the step; the other checkpoints go on
            on_failure(PlanItem.from_xcom(item).name, f"{type(exc).__name__}: {exc}")
    compare_step(plan, context)
    from evals.pipeline.decide import decide_step

    # Each challenger against the champion (EVALS_SERVING): logged, and written to the decisions table.
    decide_step([dict(item) for item in plan], dict(context))
    return summarize_step(plan, context)


def summarize_step(plan: Sequence[Mapping[str, Any]], context: Mapping[str, Any]) -> dict[str, Any]:
    """The night's outcome per checkpoint; raises :class:`RunFailures` if any was not published."""
    from evals.warehouse import Warehouse

    warehouse = Warehouse.from_settings()
    statuses: dict[str, str] = {}
    for item, record, found in planned_runs(warehouse, plan, context):
        if record is None:
            statuses[_label(item)] = f"refused: {item.error}"
            continue
        if found is None:
            # Killed worker, task timeout, upstream failure: no step could say so. Record it, so the watermark
            # counts the attempt (a checkpoint that kills its worker must not be retried forever).
            error = "no result: a task was killed, timed out or failed upstream (see the Airflow task logs)"
            found = warehouse.record_failure(record.replace(finished_at=dt.datetime.now(dt.UTC)), error)
        statuses[_label(item)] = found.status if found.status != "failed" else f"failed: {found.error}"
    bad = {ref: status for ref, status in statuses.items() if status != "published"}
    progress.info("summary: %d published, %d not: %s", len(statuses) - len(bad), len(bad), bad or "")
    if bad:
        raise RunFailures("; ".join(f"{ref}: {status}" for ref, status in bad.items()))
    return {"published": len(statuses)}


def compare_step(plan: Sequence[Mapping[str, Any]], context: Mapping[str, Any]) -> dict[str, Any]:
    """Compare the night's published runs with their baselines, refresh the report, apply the regression policy."""
    from evals.pipeline.night import compare_and_report
    from evals.warehouse import Warehouse

    warehouse = Warehouse.from_settings()
    run_ids = [
        found.run_id
        for _, _, found in planned_runs(warehouse, plan, context)
        if found is not None and found.status == "published"
    ]
    summary = compare_and_report(run_ids, warehouse=warehouse)
    progress.info(
        "compare: %d run(s) compared, verdicts %s; report: %s", len(run_ids), summary["verdicts"], summary["report"]
    )
    return summary


def compact_step() -> dict[str, Any]:
    """Compact partitions older than ``EVALS_COMPACT_AFTER_DAYS``, expire old snapshots, delete orphaned files."""
    from evals.warehouse import Warehouse
    from evals.warehouse.compaction import compact_all, compaction_cutoff
    from evals.warehouse.maintenance import maintain

    warehouse = Warehouse.from_settings()
    until = compaction_cutoff(warehouse.settings)
    results = compact_all(warehouse, end=until)
    maintained = maintain(warehouse)
    swept = warehouse.sweep_staging(dt.timedelta(days=max(1, warehouse.settings.compact_after_days)))
    summary: dict[str, Any] = {r.table: {"partitions": r.partitions, "files_merged": r.files_merged} for r in results}
    return {
        **summary,
        "snapshots_expired": sum(m.snapshots_expired for m in maintained),
        "orphan_files_deleted": sum(m.files_deleted for m in maintained),
        "staging_files_swept": swept,
    }


def report_step() -> dict[str, Any]:
    """Rebuild the HTML report under the warehouse's ``_reports/`` and log the leaderboard."""
    from evals.analysis.leaderboard import connect
    from evals.report.build import publish_report
    from evals.warehouse import Warehouse

    warehouse = Warehouse.from_settings()
    rows = connect(warehouse).execute("select model_id, accuracy, ttft_p95_ms from leaderboard").fetchall()
    for row in rows:
        log.info("leaderboard: %s accuracy=%s ttft_p95_ms=%s", *row)
    return {"models": len(rows), "report": publish_report(warehouse)}


# ---------------------------------------------------------------------------------------------------- helpers


def planned_runs(
    warehouse: Warehouse, plan: Sequence[Mapping[str, Any]] | None, context: Mapping[str, Any]
) -> list[tuple[PlanItem, RunRecord | None, RunRecord | None]]:
    """(item, the run's keys, its stored record or None) per plan item; refused entries have no keys.

    Every item of a DAG run shares its logical date, so the runs of each date are read once, not once per item.
    """
    import pyarrow.dataset as pads

    items = [PlanItem.from_xcom(item) for item in plan or []]
    keyed = [(item, run_record(item.ref, item.options, context) if item.ref else None) for item in items]
    stored: dict[str, RunRecord] = {}
    for day in {record.eval_date for _, record in keyed if record is not None}:
        stored.update({r.run_id: r for r in warehouse.run_records(filter=pads.field(PARTITION_COLUMN) == day)})
    return [(item, record, stored.get(record.run_id) if record else None) for item, record in keyed]


def _label(item: PlanItem) -> str:
    """A plan item as a person names it: the checkpoint, and the suite/scenario when it is one of several runs."""
    what = "/".join(str(part) for part in (item.options.suite, item.options.scenario) if part)
    return f"{item.name} ({what})" if item.ref is not None else item.name


def json_safe(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` if it is strict JSON (what XCom accepts); NaN/inf or objects fail here, naming the problem."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TerminalError(f"a step result is not strict JSON (NaN, inf or an object): {exc}") from exc
    return value


@contextlib.contextmanager
def _step(name: str, item: PlanItem, context: Mapping[str, Any]) -> Iterator[None]:
    """Log progress; on failure record the run as ``failed`` with the error, then re-raise."""
    assert item.ref is not None
    ref = item.ref
    started = time.monotonic()
    progress.info("%s: %s ...", name, short(ref))
    try:
        yield
    except BaseException as exc:  # task timeouts and terminations are BaseExceptions in Airflow
        progress.info("%s: %s FAILED after %.1fs: %s", name, short(ref), time.monotonic() - started, exc)
        try:
            record = run_record(ref, item.options, context)
        except Exception:  # an unpinned ref has no run to record the failure against
            log.exception("could not record the failure of %s", ref)
        else:
            _record_failure(record, f"{name}: {type(exc).__name__}: {exc}")
        raise
    progress.info("%s: %s done in %.1fs", name, short(ref), time.monotonic() - started)


def _record_failure(record: RunRecord, error: str) -> None:
    from evals.warehouse import Warehouse

    try:
        Warehouse.from_settings().record_failure(record.replace(finished_at=dt.datetime.now(dt.UTC)), error)
    except Exception:  # the original error matters more than a failure to record it
        log.exception("could not record the failure of %s@%s", record.model_id, record.revision)
