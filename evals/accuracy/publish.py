"""An accuracy result -> a ``runs`` record plus ``accuracy`` rows in the warehouse."""

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
    status: str = "published",
    **fields: Any,
) -> RunRecord:
    """Write the result's rows, then its ``runs`` row (commit-last). Idempotent for the same logical date."""
    from evals.warehouse import Warehouse

    logical_date = logical_date or dt.datetime.now(dt.UTC)
    record = run_record(result, logical_date=logical_date, source=source, **fields)
    warehouse = warehouse or Warehouse.from_settings()
    return warehouse.write_run(record, {"accuracy": result.rows}, status=status)
