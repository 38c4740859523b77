"""``evals warehouse migrate``: a Hive-layout warehouse of round 1 brought into the Iceberg tables."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from evals.schemas import PARTITION_COLUMN, TABLES

if TYPE_CHECKING:
    from evals.warehouse.store import Warehouse

log = logging.getLogger(__name__)


@dataclass
class MigrationResult:
    source: str
    runs: int = 0
    not_published: int = 0  # run records in the source that were quarantined or failed: left behind
    rows: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        counts = ", ".join(f"{table} {n}" for table, n in self.rows.items())
        return (
            f"migrated {self.runs} published run(s) from {self.source} (rows: {counts}); "
            f"{self.not_published} quarantined or failed run(s) not migrated"
        )


def migrate(source_uri: str, warehouse: Warehouse) -> MigrationResult:
    """Copy the published runs of the Hive-layout warehouse at ``source_uri`` into ``warehouse``'s tables.

    Each month of partitions is one overwrite per table, filtered on its runs' (eval_date, run_id): running the
    migration again replaces what it wrote, so every run is there exactly once. Data tables go first and the
    ``runs`` rows last, the warehouse's commit rule, so an interrupted migration publishes no half-copied run.
    """
    from pyiceberg.expressions import And

    from evals.warehouse import hive
    from evals.warehouse.rows import one_of
    from evals.warehouse.storage import Storage, make_filesystem, parse_uri

    location = parse_uri(source_uri)
    source = Storage(location, make_filesystem(location, warehouse.settings))
    all_records = hive.read_table(source, "runs")
    runs = hive.published_runs(source)
    result = MigrationResult(location.uri, runs=runs.num_rows)
    result.not_published = len(set(all_records["run_id"].to_pylist())) - runs.num_rows
    months: dict[tuple[int, int], dict[dt.date, set[str]]] = defaultdict(lambda: defaultdict(set))
    for run_id, day in zip(runs["run_id"].to_pylist(), runs[PARTITION_COLUMN].to_pylist(), strict=True):
        months[day.year, day.month][day].add(run_id)
    ordered = [t for t in TABLES if t != "runs"] + ["runs"]
    for table in ordered:
        result.rows[table] = 0
    for table in ordered:
        for (year, month), by_day in sorted(months.items()):
            run_ids = set().union(*by_day.values())
            rows = hive.read_table(source, table, run_ids, set(by_day))
            if rows.num_rows == 0:
                continue
            target = warehouse.tables.load(table)
            flt = And(one_of(PARTITION_COLUMN, [d.isoformat() for d in by_day]), one_of("run_id", run_ids))
            warehouse.committing(f"migrate {table} {year}-{month:02d}", partial(target.overwrite, rows, flt))
            result.rows[table] += rows.num_rows
            log.info("migrated %s %d-%02d: %d rows", table, year, month, rows.num_rows)
    return result
