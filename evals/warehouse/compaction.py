"""Compaction: a partition's many small data files rewritten as one, in one atomic Iceberg overwrite.

pyiceberg 0.12 has no rewrite-data-files action, so a partition (one eval_date) is read at a snapshot and written
back with ``overwrite(rows, eval_date = D)``: one commit replaces every file of the partition. Readers pinned to an
earlier snapshot keep reading the old files (they stay until expiry and orphan removal, see ``maintenance``). A
run published into the same partition meanwhile makes the overwrite fail its validation (pyiceberg checks for data
added under the overwrite's filter since the scan), and the partition is left for the next compaction: nothing a
concurrent publisher wrote is lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evals.schemas import PARTITION_COLUMN, TABLES
from evals.warehouse.catalog import AREAS

if TYPE_CHECKING:
    from evals.warehouse.store import Warehouse

log = logging.getLogger(__name__)
_EPOCH = dt.date(1970, 1, 1)


@dataclass
class CompactionResult:
    table: str
    partitions: int = 0
    files_merged: int = 0
    rows: int = 0
    skipped: int = 0  # partitions changed by a concurrent commit, left for next time


def compact(
    warehouse: Warehouse,
    table: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    area: str = "published",
) -> CompactionResult:
    """Rewrite each partition of ``table`` with ``start <= eval_date <= end`` that has more than one data file."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    from evals.warehouse.store import equal

    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    result = CompactionResult(table)
    iceberg = warehouse.tables.existing(table, area)
    snapshot = iceberg.current_snapshot() if iceberg is not None else None
    if iceberg is None or snapshot is None:
        return result
    files: dict[dt.date, int] = defaultdict(int)
    for task in iceberg.scan(snapshot_id=snapshot.snapshot_id).plan_files():
        files[_partition_date(task.file.partition[0])] += 1
    for eval_date, count in sorted(files.items()):
        if count <= 1 or (start and eval_date < start) or (end and eval_date > end):
            continue
        partition = equal(PARTITION_COLUMN, eval_date.isoformat())
        # Read at the head the overwrite starts from: its validation then covers every commit after the read.
        iceberg = iceberg.refresh()
        head = iceberg.current_snapshot()
        rows = iceberg.scan(row_filter=partition, snapshot_id=head.snapshot_id if head else None).to_arrow()
        rows = rows.sort_by([("run_id", "ascending")])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                iceberg.overwrite(rows, overwrite_filter=partition)
        except (ValidationException, CommitFailedException) as exc:
            log.info("left %s eval_date=%s for next time: a concurrent commit changed it (%s)", table, eval_date, exc)
            result.skipped += 1
            continue
        result.partitions += 1
        result.files_merged += count
        result.rows += rows.num_rows
        log.info("compacted %s eval_date=%s: %d files -> 1 (%d rows)", table, eval_date, count, rows.num_rows)
    return result


def compact_all(
    warehouse: Warehouse, start: dt.date | None = None, end: dt.date | None = None
) -> list[CompactionResult]:
    """Compact every table of both namespaces (data tables before ``runs``; results unchanged either way)."""
    ordered = [t for t in TABLES if t != "runs"] + ["runs"]
    results = []
    for area in AREAS:
        for table in ordered:
            found = compact(warehouse, table, start, end, area=area)
            if area == "published":
                results.append(found)
    return results


def _partition_date(value: object) -> dt.date:
    """An identity partition value of a date column: pyiceberg gives days since 1970-01-01 (or a date)."""
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int):
        return _EPOCH + dt.timedelta(days=value)
    raise TypeError(f"unexpected eval_date partition value {value!r}")
