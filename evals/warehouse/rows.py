"""A run's rows: the filters that select them, frames conformed to a run, reads guarded and cast to the schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from evals.conformance import Frame, conform
from evals.errors import SchemaViolation
from evals.schemas import PARTITION_COLUMN, arrow_schema
from evals.warehouse.storage import classify

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.expressions import BooleanExpression

    from evals.warehouse.record import RunRecord

T = TypeVar("T")


def run_filter(record: RunRecord) -> BooleanExpression:
    """The rows of one run: eval_date prunes partitions, run_id files (by their column bounds) and rows."""
    from pyiceberg.expressions import And

    return And(equal(PARTITION_COLUMN, record.eval_date.isoformat()), equal("run_id", record.run_id))


def equal(column: str, value: str) -> BooleanExpression:
    """``column = value`` as a pyiceberg expression (a date column takes an ISO string)."""
    from pyiceberg.expressions import EqualTo

    return cast(Any, EqualTo)(column, value)  # pydantic-typed constructor; positional at run time


def one_of(column: str, values: Iterable[str]) -> BooleanExpression:
    """``column IN values`` as a pyiceberg expression."""
    from pyiceberg.expressions import In

    return cast(Any, In)(column, sorted(set(values)))


def as_schema(table: str, rows: pa.Table) -> pa.Table:
    """Rows read from Iceberg as ``table``'s current Arrow schema (columns by name; absent ones null)."""
    import pyarrow as pa

    schema = arrow_schema(table)
    present = set(rows.column_names)
    arrays = [
        rows.column(f.name).cast(f.type) if f.name in present else pa.nulls(rows.num_rows, f.type) for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def guarded_read(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except OSError as exc:
        raise classify(exc, what) from exc


def conform_run_table(name: str, frame: Frame, record: RunRecord) -> pa.Table:
    """``frame`` as ``name``'s Arrow table for this run: run_id/eval_date filled in, rows of another run refused."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = conform(name, _with_run_keys(frame, record))
    for column, expected in (("run_id", record.run_id), (PARTITION_COLUMN, record.eval_date)):
        if table.num_rows and not pc.all(pc.equal(table.column(column), pa.scalar(expected))).as_py():
            raise SchemaViolation(name, column, f"every row must belong to run {record.run_id} ({column}={expected})")
    return table


def _with_run_keys(frame: Frame, record: RunRecord) -> Frame:
    """Fill run_id and eval_date from the record where the frame leaves them out."""
    import pyarrow as pa

    keys_ = {"run_id": record.run_id, PARTITION_COLUMN: record.eval_date}
    if isinstance(frame, pa.Table):
        for column, value in keys_.items():
            if column not in frame.column_names:
                frame = frame.append_column(column, pa.array([value] * frame.num_rows))
        return frame
    if hasattr(frame, "columns") and hasattr(frame, "assign"):  # pandas
        return frame.assign(**{k: v for k, v in keys_.items() if k not in frame.columns})
    # A row that is not a mapping is left for conform() to refuse with a clear message.
    return [{**keys_, **row} if isinstance(row, Mapping) else row for row in frame]
