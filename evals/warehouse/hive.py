"""Reading a warehouse in the Hive layout of round 1 (``<table>/eval_date=D/<run_id>.parquet``), for migration.

Its commit rules, applied here once: a run counts when its ``runs`` row (under ``runs/``, not ``_quarantine/``)
says ``published``; a per-run file wins over the run's rows in a compacted file (``compacted-gNNNNNN.parquet``,
only the newest generation of a partition counts); an empty per-run file hides the run's compacted rows.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from evals.schemas import PARTITION_COLUMN, RUN_STATUSES, arrow_schema

if TYPE_CHECKING:
    import pyarrow as pa

    from evals.warehouse.storage import Storage

COMPACTED_PREFIX = "compacted-g"
PARTITION_PREFIX = f"{PARTITION_COLUMN}="


def partition_dir(table: str, eval_date: dt.date) -> str:
    """Relative directory of one partition, e.g. ``accuracy/eval_date=2026-11-29``."""
    return f"{table}/{PARTITION_PREFIX}{eval_date.isoformat()}"


def run_file(table: str, eval_date: dt.date, run_id: str) -> str:
    """Relative path of one run's file, e.g. ``accuracy/eval_date=2026-11-29/<run_id>.parquet``."""
    return f"{partition_dir(table, eval_date)}/{run_id}.parquet"


def compacted_file(table: str, eval_date: dt.date, generation: int) -> str:
    return f"{table}/{PARTITION_PREFIX}{eval_date.isoformat()}/{COMPACTED_PREFIX}{generation:06d}.parquet"


def compacted_generation(filename: str) -> int | None:
    """Generation number of a compacted file name, None for a per-run file."""
    if filename.startswith(COMPACTED_PREFIX) and filename.endswith(".parquet"):
        digits = filename[len(COMPACTED_PREFIX) : -len(".parquet")]
        return int(digits) if digits.isdigit() else None
    return None


def partition_date(path: str) -> dt.date | None:
    """The eval_date of a file from its partition directory (``.../eval_date=YYYY-MM-DD/<name>``), else None."""
    parts = path.rsplit("/", 2)
    if len(parts) < 2 or not parts[-2].startswith(PARTITION_PREFIX):
        return None
    try:
        return dt.date.fromisoformat(parts[-2][len(PARTITION_PREFIX) :])
    except ValueError:
        return None


def table_files(storage: Storage, table: str, days: set[dt.date] | None = None) -> tuple[dict[str, str], list[str]]:
    """({run_id: per-run file}, [newest compacted file of each partition]) of a published table."""
    per_run: dict[str, str] = {}
    newest: dict[dt.date, tuple[int, str]] = {}
    for info in storage.list_files(table):
        day = partition_date(info.path)
        if day is None or not info.base_name.endswith(".parquet") or (days is not None and day not in days):
            continue
        generation = compacted_generation(info.base_name)
        if generation is None:
            per_run[info.base_name[: -len(".parquet")]] = info.path
        elif day not in newest or generation > newest[day][0]:
            newest[day] = (generation, info.path)
    return per_run, sorted(path for _, path in newest.values())


def read_table(
    storage: Storage, table: str, run_ids: set[str] | None = None, days: set[dt.date] | None = None
) -> pa.Table:
    """The rows of ``table`` by the layout's rules, restricted to ``run_ids`` and partitions ``days`` when given."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    file_schema = arrow_schema(table, with_partition=False)
    per_run, compacted = table_files(storage, table, days)
    parts = []
    for run_id, path in sorted(per_run.items()):
        if run_ids is None or run_id in run_ids:
            parts.append(_with_date(pq.read_table(path, filesystem=storage.fs, schema=file_schema), path))
    overridden = pa.array(sorted(per_run), pa.string())
    for path in compacted:
        rows = pq.read_table(path, filesystem=storage.fs, schema=file_schema)
        keep = pc.invert(pc.is_in(rows["run_id"], overridden))
        if run_ids is not None:
            keep = pc.and_(keep, pc.is_in(rows["run_id"], pa.array(sorted(run_ids), pa.string())))
        parts.append(_with_date(rows.filter(keep), path))
    schema = arrow_schema(table)
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts).select(schema.names).cast(schema)


def published_runs(storage: Storage) -> pa.Table:
    """The ``runs`` rows of published runs (one per run_id)."""
    import pyarrow.compute as pc

    runs = read_table(storage, "runs")
    rank = {status: i for i, status in enumerate(RUN_STATUSES)}
    best: dict[str, int] = {}
    for i, (run_id, status) in enumerate(zip(runs["run_id"].to_pylist(), runs["status"].to_pylist(), strict=True)):
        if run_id not in best or rank[status] < rank[runs["status"][best[run_id]].as_py()]:
            best[run_id] = i
    chosen = runs.take(sorted(best.values()))
    return chosen.filter(pc.equal(chosen["status"], "published"))


def _with_date(rows: pa.Table, path: str) -> pa.Table:
    import pyarrow as pa

    day = partition_date(path)
    return rows.append_column(PARTITION_COLUMN, pa.array([day] * rows.num_rows, pa.date32()))
