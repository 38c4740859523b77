"""Compaction: merge a partition's per-run files into one file, never exposing missing or doubled rows.

Granularity stays one file per ``eval_date=YYYY-MM-DD`` partition on purpose: Trino, Athena and Spark take
eval_date from the directory, so a file may only hold rows of its own day, and mixing partition schemes (e.g.
``eval_month=``) under one table location breaks their partition discovery. Coarser files would cut the file
count further, but only through a side index outside the table locations, which this layout does not need: the
DuckDB views open only the files of the runs a query needs (see ``evals.analysis.views``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evals.schemas import PARTITION_COLUMN, TABLES, arrow_schema
from evals.warehouse import keys

if TYPE_CHECKING:
    from pyarrow import fs as pafs

    from evals.warehouse.store import Warehouse

log = logging.getLogger(__name__)


@dataclass
class CompactionResult:
    table: str
    partitions: int = 0
    files_merged: int = 0
    rows: int = 0


def compact(
    warehouse: Warehouse, table: str, start: dt.date | None = None, end: dt.date | None = None
) -> CompactionResult:
    """Merge the per-run files of each published partition with ``start <= eval_date <= end`` into one file.

    Order of operations keeps every reader's view exact at every instant: the merged file is written as a new
    generation (``compacted-gNNNNNN.parquet``) first — readers let a per-run file win over its compacted copy and
    read only the newest generation — and the consumed files are deleted last, and only if unchanged since they
    were read (a concurrent rewrite of the same run keeps its newer per-run file).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    result = CompactionResult(table)
    file_schema = arrow_schema(table, with_partition=False)
    for eval_date, infos in sorted(_partitions(warehouse, table).items()):
        if (start and eval_date < start) or (end and eval_date > end):
            continue
        per_run = [i for i in infos if keys.compacted_generation(i.base_name) is None]
        generations = sorted(
            ((g, i) for i in infos if (g := keys.compacted_generation(i.base_name)) is not None),
            key=lambda pair: pair[0],
        )
        if not per_run and len(generations) <= 1:
            continue  # already one file
        if len(per_run) == 1 and not generations:
            continue  # a single run's file is already "one file per partition"
        parts = [pq.read_table(i.path, filesystem=warehouse.fs, schema=file_schema) for i in per_run]
        if generations:
            previous = pq.read_table(generations[-1][1].path, filesystem=warehouse.fs, schema=file_schema)
            overridden = pa.array([i.base_name[: -len(".parquet")] for i in per_run], pa.string())
            parts.append(previous.filter(pc.invert(pc.is_in(previous["run_id"], overridden))))
        merged = pa.concat_tables(parts).sort_by([("run_id", "ascending")])
        next_generation = (generations[-1][0] + 1) if generations else 1
        warehouse.storage.write_parquet(keys.compacted_file(table, eval_date, next_generation), merged)
        for info in per_run:
            _delete_if_unchanged(warehouse, info)
        for _, info in generations:
            warehouse.fs.delete_file(info.path)
        result.partitions += 1
        result.files_merged += len(per_run) + len(generations)
        result.rows += merged.num_rows
        log.info(
            "compacted %s eval_date=%s: %d files -> 1 (%d rows)",
            table,
            eval_date,
            len(per_run) + len(generations),
            merged.num_rows,
        )
    return result


def compact_all(
    warehouse: Warehouse, start: dt.date | None = None, end: dt.date | None = None
) -> list[CompactionResult]:
    # Data tables before runs: harmless either way (visibility is per run_id), but keeps runs files last-touched.
    ordered = [t for t in TABLES if t != "runs"] + ["runs"]
    return [compact(warehouse, table, start, end) for table in ordered]


def _partitions(warehouse: Warehouse, table: str) -> dict[dt.date, list[pafs.FileInfo]]:
    grouped: dict[dt.date, list[pafs.FileInfo]] = defaultdict(list)
    for info in warehouse.storage.list_files(table):
        directory = info.path.rsplit("/", 1)[0].rsplit("/", 1)[-1]
        if not directory.startswith(f"{PARTITION_COLUMN}=") or not info.base_name.endswith(".parquet"):
            continue
        grouped[dt.date.fromisoformat(directory.split("=", 1)[1])].append(info)
    return grouped


def _delete_if_unchanged(warehouse: Warehouse, listed: pafs.FileInfo) -> None:
    current = warehouse.fs.get_file_info(listed.path)
    if current.size != listed.size or current.mtime != listed.mtime:
        log.warning("kept %s: rewritten while compacting (its newer rows win over the compacted copy)", listed.path)
        return
    with contextlib.suppress(FileNotFoundError):  # already gone: a concurrent compaction got there first
        warehouse.fs.delete_file(listed.path)
