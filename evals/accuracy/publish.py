"""An accuracy result -> a ``runs`` record plus ``accuracy`` and ``accuracy_samples`` rows, through the gate."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.accuracy.runner import AccuracyResult
    from evals.warehouse import RunRecord, Warehouse


def run_record(result: AccuracyResult, *, logical_date: dt.datetime, source: str, **fields: Any) -> RunRecord:
    """The ``runs`` record of this result; ``fields`` adds/overrides the rest (dag_id, checkpoint_uri, ...)."""
    from evals.warehouse import RunRecord

    p = result.provenance
    values: dict[str, Any] = {
        "model_id": p["model_id"],
        "revision": p["revision"],
        "logical_date": logical_date,
        "source": source,
        **result.record_fields(),
    }
    values.update(fields)
    return RunRecord(**values)


def publish(
    result: AccuracyResult,
    *,
    logical_date: dt.datetime | None = None,
    source: str = "local",
    warehouse: Warehouse | None = None,
    **fields: Any,
) -> RunRecord:
    """Validate the result with the gate, then publish it — or quarantine it and raise ``ValidationFailed``.

    The expected (task, metric, filter) set comes from lm-eval's own result dict, as for ``evals run``.
    Idempotent for the same logical date.
    """
    from evals.evaluation import merge
    from evals.validation import validate_and_write

    logical_date = logical_date or dt.datetime.now(dt.UTC)
    record = run_record(result, logical_date=logical_date, source=source, **fields)
    outcome = merge(result, None)
    return validate_and_write(record, outcome.tables, expected=outcome.expected, warehouse=warehouse)
