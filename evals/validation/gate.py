"""The validation gate: conform, validate with GX, then publish — or quarantine with the reasons kept."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evals.conformance import Frame
from evals.errors import RunNotFound, SchemaViolation, ValidationFailed
from evals.validation.expected import Expected
from evals.validation.report import Failure, ValidationReport, failures_of, json_safe
from evals.warehouse.keys import validation_key

if TYPE_CHECKING:
    import pyarrow as pa

    from evals.settings import Settings
    from evals.warehouse import RunRecord, Warehouse

log = logging.getLogger(__name__)


def conform_tables(
    record: RunRecord, tables: Mapping[str, Frame]
) -> tuple[dict[str, pa.Table], list[Failure], dict[str, Any]]:
    """(tables conformed to their schema, schema failures, raw rows of the tables that did not conform)."""
    from evals.warehouse import DATA_TABLES
    from evals.warehouse.rows import conform_run_table

    conformed: dict[str, pa.Table] = {}
    failures: list[Failure] = []
    raw: dict[str, Any] = {}
    for name, frame in tables.items():
        try:
            if name not in DATA_TABLES:
                raise SchemaViolation(name, "-", f"not a data table; data tables: {', '.join(DATA_TABLES)}")
            conformed[name] = conform_run_table(name, frame, record)
        except SchemaViolation as exc:
            failures.append(
                Failure(
                    table=exc.table,
                    check="schema",
                    description=f"column {exc.column!r}: {exc.problem}",
                    column=exc.column,
                )
            )
            raw[name] = json_safe(_rows_of(frame))
    return conformed, failures, raw


def validate(
    record: RunRecord,
    tables: Mapping[str, Frame],
    *,
    expected: Expected | None = None,
    settings: Settings | None = None,
) -> tuple[ValidationReport, dict[str, pa.Table]]:
    """Validate one run's tables (nothing is written). Returns the report and the conformed tables."""
    from evals.settings import get_settings
    from evals.validation.frames import validation_frames
    from evals.validation.runtime import runtime
    from evals.validation.suites import INDEX_COLUMNS, suite_builders, suite_parameters, thresholds

    settings = settings or get_settings()
    expected = expected or Expected()
    report = ValidationReport(record.run_id, record.model_id, record.revision, expected, thresholds(settings))
    conformed, schema_failures, raw = conform_tables(record, tables)
    if schema_failures:
        # A frame that does not fit its schema cannot be checked column by column; report it as it is.
        report.failures, report.raw_rows = schema_failures, raw
        return report, conformed
    frames = validation_frames(record, conformed, expected, bounded_metrics=settings.validation_bounded_metrics)
    gx = runtime()
    with gx.lock:
        for table, (fingerprint, build) in suite_builders(set(frames), expected, settings).items():
            result = gx.validate(
                table,
                fingerprint,
                build,
                frames[table],
                parameters=suite_parameters(record),
                run_name=record.run_id,
                index_columns=INDEX_COLUMNS[table],
                sample_rows=settings.validation_sample_rows,
            )
            report.results[table] = result
            report.failures += failures_of(table, result)
    return report, conformed


def validate_and_write(
    record: RunRecord,
    tables: Mapping[str, Frame],
    *,
    expected: Expected | None = None,
    warehouse: Warehouse | None = None,
) -> RunRecord:
    """Publish the run if it passes validation; otherwise quarantine it and raise :class:`ValidationFailed`.

    Quarantine keeps everything: the conformed tables as Parquet under ``_quarantine/``, the validation result
    (failed checks, observed values, offending rows; raw rows of tables that broke their schema) as JSON at
    ``_quarantine/_validation/<run_id>.json``, and a ``runs`` row with status ``quarantined`` whose ``error``
    names the failed checks. Thresholds come from ``warehouse.settings``.
    """
    from evals.warehouse import Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    report, conformed = validate(record, tables, expected=expected, settings=warehouse.settings)
    try:
        return _write(warehouse, record, report, conformed)
    finally:
        _publish_docs(warehouse, record.run_id)


def revalidate(run_id: str, *, warehouse: Warehouse | None = None) -> tuple[RunRecord, bool]:
    """Validate a quarantined run again with the current settings; publish it if it passes now.

    Returns (record, published_now). A run that is already published is left alone (published_now False),
    so running this twice publishes a run exactly once. Raises :class:`ValidationFailed` if it still fails
    (the quarantine then holds the new reasons) and :class:`RunNotFound` for an unknown run.
    """
    from evals.warehouse import DATA_TABLES, Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    published = warehouse.find_run(run_id, area="published")
    if published is not None and published.status == "published":
        log.info("run %s is already published; nothing to do", run_id)
        return published, False
    record = warehouse.find_run(run_id, area="quarantine")
    if record is None:
        raise RunNotFound(f"no quarantined run {run_id} in {warehouse.uri}")
    previous = _previous_report(warehouse, run_id)
    tables: dict[str, Frame] = {
        name: table
        for name in DATA_TABLES
        if (table := warehouse.read_run_table(name, record, area="quarantine")) is not None
    }
    # Tables that broke their schema were kept only as raw rows; they get their chance again too.
    tables.update(previous.get("raw_rows") or {})
    expected = Expected.from_json(previous.get("expected"))
    report, conformed = validate(record.replace(error=None), tables, expected=expected, settings=warehouse.settings)
    try:
        return _write(warehouse, record.replace(error=None), report, conformed), True
    finally:
        _publish_docs(warehouse, record.run_id)


def quarantined_runs(warehouse: Warehouse | None = None) -> list[RunRecord]:
    """Every quarantined run (not published since), oldest first; ``error`` holds the reasons."""
    from evals.warehouse import Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    return warehouse.run_records(statuses=["quarantined"])


def quarantine_report(run_id: str, *, warehouse: Warehouse | None = None) -> dict[str, Any] | None:
    """The stored validation result of a quarantined run, or None."""
    from evals.warehouse import Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    return _previous_report(warehouse, run_id) or None


def _write(
    warehouse: Warehouse, record: RunRecord, report: ValidationReport, conformed: dict[str, pa.Table]
) -> RunRecord:
    if report.success:
        from evals.warehouse.approval import Approval

        approval = Approval.issue(record.run_id, conformed)
        written = warehouse.write_run(record.replace(error=None), conformed, status="published", approval=approval)
        # The run left quarantine: its old validation result would only mislead.
        warehouse.storage.delete(validation_key(record.run_id))
        return written
    summary = report.summary()
    # The reasons first, then the data, then the runs row: a quarantined run is never without its reasons.
    warehouse.storage.write_json(validation_key(record.run_id), report.to_json())
    warehouse.write_run(record.replace(error=summary), conformed, status="quarantined")
    log.warning("quarantined %s", summary)
    raise ValidationFailed(summary)


def _previous_report(warehouse: Warehouse, run_id: str) -> dict[str, Any]:
    path = validation_key(run_id)
    if not warehouse.storage.exists(path):
        return {}
    data = warehouse.storage.read_json(path)
    return data if isinstance(data, dict) else {}


def _publish_docs(warehouse: Warehouse, run_id: str) -> None:
    if not warehouse.settings.validation_data_docs:
        return
    from evals.validation.docs import publish_data_docs

    try:
        publish_data_docs(warehouse, run_id)
    except Exception:
        # Data Docs are a convenience view; the JSON result and the runs row already hold the outcome.
        log.warning("could not publish GX Data Docs to %s", warehouse.uri, exc_info=True)


def _rows_of(frame: Frame) -> Any:
    """A frame of any accepted kind as a list of row dicts (or its text, if it is not even a frame)."""
    try:
        if hasattr(frame, "to_pylist"):
            return frame.to_pylist()
        if hasattr(frame, "to_dict"):
            return frame.to_dict(orient="records")
        return [dict(row) for row in frame]
    except Exception:
        return repr(frame)[:100_000]
