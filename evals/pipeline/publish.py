"""The one way a run is published: its ``runs`` record, built from (checkpoint, options, run context), through the gate.

The DAG steps, ``evals run``, ``evals accuracy --publish`` and ``evals latency --publish`` all build the record
here and publish here: the gate validates every table against what the result says it produced, then the data
tables are committed and the ``runs`` row last; invalid results are quarantined, never published.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError

if TYPE_CHECKING:
    from evals.checkpoints import CheckpointRef
    from evals.pipeline.outcome import Outcome
    from evals.pipeline.plan import Options
    from evals.validation import Expected
    from evals.warehouse import RunRecord, Warehouse


def run_context(logical_date: dt.datetime | None = None) -> dict[str, Any]:
    """The run context of a run started outside Airflow: no DAG, keyed by ``logical_date`` (default: now, UTC)."""
    when = logical_date or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return {"dag_id": None, "dag_run_id": None, "logical_date": when.isoformat()}


def run_record(ref: CheckpointRef, options: Options, context: Mapping[str, Any]) -> RunRecord:
    """The run record's keys for this (checkpoint, suite, scenario, logical date); fields of the result come later."""
    from evals.warehouse import RunRecord

    if ref.revision is None:
        raise ConfigError(f"{ref} is not pinned to a revision")
    return RunRecord(
        model_id=ref.model_id,
        revision=ref.revision,
        logical_date=dt.datetime.fromisoformat(context["logical_date"]),
        source=ref.source,
        suite=options.suite,
        suite_version=options.suite_version,
        scenario=options.scenario,
        scenario_version=options.scenario_version,
        dag_id=context.get("dag_id"),
        dag_run_id=context.get("dag_run_id"),
        checkpoint_uri=ref.uri,
        dtype=ref.meta.dtype,
        params=ref.meta.params,
        started_at=dt.datetime.now(dt.UTC),
    )


def outcome_record(ref: CheckpointRef, options: Options, context: Mapping[str, Any], outcome: Outcome) -> RunRecord:
    """The ``runs`` record of an evaluated checkpoint: the run's keys plus the provenance of its results."""
    return run_record(ref, options, context).replace(**outcome.record_fields)


def publish_record(
    record: RunRecord,
    tables: Mapping[str, Any],
    expected: Expected,
    *,
    warehouse: Warehouse | None = None,
) -> RunRecord:
    """Validate ``tables`` with the gate and publish them as ``record``'s run, or quarantine them and raise
    ``ValidationFailed``. Idempotent for the same run id."""
    from evals.validation import validate_and_write

    finished = record.replace(finished_at=dt.datetime.now(dt.UTC))
    return validate_and_write(finished, dict(tables), expected=expected, warehouse=warehouse)


def publish(
    ref: CheckpointRef,
    options: Options,
    context: Mapping[str, Any],
    outcome: Outcome,
    *,
    warehouse: Warehouse | None = None,
) -> RunRecord:
    """Publish one evaluated checkpoint (an :class:`~evals.pipeline.outcome.Outcome`) as one run."""
    record = outcome_record(ref, options, context, outcome)
    return publish_record(record, outcome.tables, outcome.expected, warehouse=warehouse)
