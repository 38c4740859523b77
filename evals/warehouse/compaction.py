"""Compaction: a partition's many small data files rewritten as one, in one atomic Iceberg overwrite.

pyiceberg 0.12 has no rewrite-data-files action, so the partitions (eval_dates) of a month that have several files
are read at a snapshot and written back with ``overwrite(rows, eval_date IN (...))``: one commit replaces every
file of those partitions by one file per partition. Readers pinned to an
earlier snapshot keep reading the old files (they stay until expiry and orphan removal, see ``maintenance``). A
run published into one of those partitions meanwhile makes the overwrite fail its validation (pyiceberg checks for
data added under the overwrite's filter since the scan), and they are left for the next compaction: nothing a
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
    from evals.settings import Settings
    from evals.warehouse.store import Warehouse

log = logging.getLogger(__name__)
_EPOCH = dt.date(1970, 1, 1)


def compaction_cutoff(settings: Settings, today: dt.date | None = None) -> dt.date:
    """The last eval_date compacted by default: ``today`` (UTC) minus ``EVALS_COMPACT_AFTER_DAYS``."""
    return (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=settings.compact_after_days)


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
    """Rewrite each partition of ``table`` with ``start <= eval_date <= end`` that has more than one data file
    as one file (a month of partitions per commit)."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    from evals.warehouse.rows import one_of

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
    due = {d: n for d, n in sorted(files.items()) if n > 1 and not (start and d < start) and not (end and d > end)}
    batches: dict[tuple[int, int], list[dt.date]] = defaultdict(list)
    for eval_date in due:  # one commit per month of partitions: far fewer commits, each still all-or-nothing
        batches[eval_date.year, eval_date.month].append(eval_date)
    for (year, month), dates in sorted(batches.items()):
        partitions = one_of(PARTITION_COLUMN, (d.isoformat() for d in dates))
        # Read at the head the overwrite starts from: its validation then covers every commit after the read.
        iceberg = iceberg.refresh()
        head = iceberg.current_snapshot()
        rows = iceberg.scan(row_filter=partitions, snapshot_id=head.snapshot_id if head else None).to_arrow()
        rows = rows.sort_by([(PARTITION_COLUMN, "ascending"), ("run_id", "ascending")])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                iceberg.overwrite(rows, overwrite_filter=partitions)
        except (ValidationException, CommitFailedException) as exc:
            log.info("left %s %d-%02d for next time: a concurrent commit changed it (%s)", table, year, month, exc)
            result.skipped += len(dates)
            continue
        merged = sum(due[d] for d in dates)
        result.partitions += len(dates)
        result.files_merged += merged
        result.rows += rows.num_rows
        log.info(
            "compacted %s %d-%02d: %d partitions, %d files -> %d", table, year, month, len(dates), merged, len(dates)
        )
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
