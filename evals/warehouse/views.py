"""DuckDB views over the Iceberg warehouse pinned at one snapshot: published runs only, per table, plus the leaderboard.

A connection reads each table at the snapshot that was current when :func:`connect` ran (or at ``as_of``: time
travel), so a query never sees a half-applied commit, and compaction or publication meanwhile changes nothing it
reads. The file list of a view comes from Iceberg's planning (``plan_files``: manifests, partition and column-bound
pruning), never from listing storage. file:// warehouses are scanned by DuckDB's own multi-threaded Parquet reader
over that explicit list; s3:// ones through ``pyarrow.dataset`` objects, because DuckDB 2.x cannot install httpfs
offline. What keeps the views fast on a long history (``bench/query_scaling.py``):

- the commit records (``all_runs``) are read once per connection into a table: every data view filters on them;
- queries that need a few runs plan only those runs' files (filter on eval_date and run_id): the ``leaderboard``
  view is built that way at connect (the latest run per model comes from ``runs`` and its ``row_counts``), and
  :func:`scope` gives the same for the runs of chosen models (e.g. a model's 3-year trend). A fixed view cannot
  do this itself: DuckDB does not push join-derived filters into a file list.

The rule the views apply, and external engines must apply too: a data row counts when its run has a ``runs`` row
with status ``published`` (written after the run's data tables).
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evals.schemas import RUN_STATUSES, TABLES

if TYPE_CHECKING:
    import datetime as dt

    import duckdb

    from evals.warehouse import Warehouse
    from evals.warehouse.snapshots import Snapshot

_STATUS_ORDER = "list_position([" + ", ".join(f"'{s}'" for s in RUN_STATUSES) + "], status)"
_AREAS = ("published", "quarantine")
_DATA_TABLES = tuple(t for t in TABLES if t != "runs")

# Headline accuracy of a run: mean over its top-level tasks of each task's first available metric in this
# order (higher-is-better metrics only), so MC tasks (acc) and generation tasks (exact_match) both count.
HEADLINE_METRICS = ("acc", "exact_match", "acc_norm", "f1", "bleu", "rouge1")

# The latest published run per model that has accuracy (resp. latency) rows. ``row_counts`` is written by
# write_run in the same commit record (a table it lacks has no rows), so it says whether a run has rows without
# reading its data; a run whose record has no row_counts is looked up in the data (``_has_rows``, at connect).
LEADERBOARD_RUNS_SQL = """
create or replace table _leaderboard_runs as
with counted as (
    select run_id, eval_date, model_id, logical_date, finished_at, suite, scenario,
           {accuracy_rows} as accuracy_rows, {latency_rows} as latency_rows
    from runs
)
(select 'accuracy' as tbl, run_id, eval_date from counted
 where suite is not null
   and coalesce(accuracy_rows > 0, run_id in (select run_id from _has_rows where tbl = 'accuracy'))
 qualify row_number() over (partition by model_id order by logical_date desc, finished_at desc nulls last) = 1)
union all
(select 'latency' as tbl, run_id, eval_date from counted
 where scenario is not null
   and coalesce(latency_rows > 0, run_id in (select run_id from _has_rows where tbl = 'latency'))
 qualify row_number() over (partition by model_id order by logical_date desc, finished_at desc nulls last) = 1)
"""

LEADERBOARD_SQL = """
create or replace view leaderboard as
with acc_runs as (
    select * from runs where run_id in (select run_id from _leaderboard_runs where tbl = 'accuracy')
), headline as (
    select a.run_id, a.task, a.value
    from _leaderboard_accuracy a join acc_runs r using (run_id)
    where a.task_group is null and coalesce(a.higher_is_better, true)
    qualify row_number() over (
        partition by a.run_id, a.task
        order by coalesce(list_position({metrics}, a.metric), 99), a.metric, a.filter) = 1
), acc as (
    select r.model_id, r.revision, r.eval_date, r.suite, avg(h.value) as accuracy, count(*) as n_tasks
    from headline h join acc_runs r using (run_id)
    group by all
), lat_runs as (
    select * from runs where run_id in (select run_id from _leaderboard_runs where tbl = 'latency')
), lat as (
    -- The headline load level: the most throughput among levels meeting the SLO for most requests; if none
    -- does, the lightest load (what a single user would see).
    select r.model_id, r.revision, r.eval_date, l.scenario, l.load_type, l.load, l.ttft_p95_ms, l.e2e_p95_ms,
           l.output_tokens_per_s, l.goodput, l.usd_per_1m_output_tokens
    from _leaderboard_latency l join lat_runs r using (run_id)
    qualify row_number() over (
        partition by l.run_id
        order by (coalesce(l.goodput, 0) >= {min_goodput}) desc,
                 case when coalesce(l.goodput, 0) >= {min_goodput} then l.output_tokens_per_s end desc nulls last,
                 l.load) = 1
)
select coalesce(acc.model_id, lat.model_id) as model_id,
       coalesce(acc.revision, lat.revision) as revision,
       greatest(acc.eval_date, lat.eval_date) as eval_date,
       acc.suite, acc.accuracy, acc.n_tasks,
       lat.scenario, lat.load_type, lat.load,
       lat.ttft_p95_ms, lat.e2e_p95_ms, lat.output_tokens_per_s, lat.goodput, lat.usd_per_1m_output_tokens,
       -- Accuracy and latency come from each model's latest run of each kind; when those are different runs,
       -- this says which revision the latency columns measured (revision is the accuracy run's).
       lat.revision as latency_revision
from acc full outer join lat on acc.model_id = lat.model_id
order by accuracy desc nulls last, ttft_p95_ms asc nulls last, model_id
"""


@dataclass
class _Pinned:
    """What a connection was opened on: the warehouse's tables pinned at one snapshot each."""

    snapshot: Snapshot
    names: Iterator[int] = field(default_factory=itertools.count)

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"


# The snapshot behind each open connection (for scope()); entries go away with their connection.
_SNAPSHOTS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, _Pinned] = weakref.WeakKeyDictionary()


def connect(
    warehouse: Warehouse | None = None, *, min_goodput: float | None = None, as_of: dt.datetime | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose views read the warehouse pinned now (or as it was at ``as_of``).

    Views: ``runs``, ``accuracy``, ``latency``, ``latency_samples``, ``comparisons``, ... (every data table of
    ``evals.schemas``; published runs only), ``all_runs`` (every run record: published, quarantined, failed),
    ``quarantined_<table>`` (quarantined data) and ``leaderboard``. The same code serves file:// (DuckDB's Parquet
    reader) and s3:// (pyarrow datasets).
    """
    import duckdb

    from evals.schemas import arrow_schema
    from evals.warehouse import Warehouse
    from evals.warehouse.snapshots import Snapshot

    warehouse = warehouse or Warehouse.from_settings()
    if min_goodput is None:
        min_goodput = warehouse.settings.leaderboard_min_goodput
    pinned = _Pinned(Snapshot(warehouse, as_of))
    con = duckdb.connect()
    _SNAPSHOTS[con] = pinned
    for table in TABLES:
        con.register(f"_empty_{table}", arrow_schema(table).empty_table())

    for area in _AREAS:
        for table in _DATA_TABLES:
            con.execute(f"create view _{area}_{table} as {_table_sql(con, pinned, area, table)}")
    # The commit records, read once: every other view filters on them.
    con.execute(
        f"""create table _all_runs as
        select * exclude (_rank) from (
            select *, row_number() over (partition by run_id order by {_STATUS_ORDER}) as _rank
            from ({_runs_table_sql(con, pinned, "published")}
                  union all {_runs_table_sql(con, pinned, "quarantine")})
        ) where _rank = 1"""
    )
    con.execute("create view all_runs as select * from _all_runs")
    con.execute("create view runs as select * from all_runs where status = 'published'")
    con.execute("create view quarantined_runs as select * from all_runs where status = 'quarantined'")
    for table in _DATA_TABLES:
        con.execute(
            f"create view {table} as select * from _published_{table} where run_id in (select run_id from runs)"
        )
        con.execute(
            f"create view quarantined_{table} as select * from _quarantine_{table} "
            f"where run_id in (select run_id from quarantined_runs)"
        )

    # The leaderboard reads only the files of the latest run per model.
    con.execute("create table _has_rows (tbl varchar, run_id varchar)")
    for table, column in (("accuracy", "suite"), ("latency", "scenario")):
        unknown = _run_keys(
            con, f"select run_id, eval_date from runs where {column} is not null and {_row_count(table)} is null"
        )
        if unknown:
            con.execute(
                f"insert into _has_rows select distinct '{table}', run_id from "
                f"({_runs_sql(con, pinned, 'published', table, unknown)})"
            )
    con.execute(LEADERBOARD_RUNS_SQL.format(accuracy_rows=_row_count("accuracy"), latency_rows=_row_count("latency")))
    for table in ("accuracy", "latency"):
        runs = _run_keys(con, f"select run_id, eval_date from _leaderboard_runs where tbl = '{table}'")
        con.execute(f"create view _leaderboard_{table} as {_runs_sql(con, pinned, 'published', table, runs)}")
    metrics = "[" + ", ".join(f"'{m}'" for m in HEADLINE_METRICS) + "]"
    con.execute(LEADERBOARD_SQL.format(metrics=metrics, min_goodput=float(min_goodput)))
    return con


def scope(con: duckdb.DuckDBPyConnection, model_ids: Sequence[str], *, schema: str = "scoped") -> str:
    """Views of the published runs of ``model_ids`` only, in schema ``schema`` (returned), reading only their files.

    ``<schema>.runs`` and ``<schema>.<data table>`` hold exactly the rows of the same views of ``con`` for those
    models, at the same snapshot, but open only the files Iceberg plans for those runs (partition and run_id
    bounds) instead of every file of the table: e.g. one model's 3-year trend reads a few hundred files rather
    than the whole history. Calling it again replaces the schema's views.
    """
    pinned = _SNAPSHOTS.get(con)
    if pinned is None:
        raise ValueError("scope() needs a connection opened by evals.warehouse.views.connect()")
    if not schema.isidentifier():
        raise ValueError(f"schema must be a plain identifier, got {schema!r}")
    con.execute(f"create schema if not exists {schema}")
    models = sorted(set(model_ids))
    con.execute(
        f"create or replace table {schema}.runs as select * from main.runs where model_id in (select unnest($1))",
        [models],
    )
    runs = _run_keys(con, f"select run_id, eval_date from {schema}.runs")
    for table in _DATA_TABLES:
        con.execute(
            f"create or replace view {schema}.{table} as select * from "
            f"({_runs_sql(con, pinned, 'published', table, runs)}) where run_id in (select run_id from {schema}.runs)"
        )
    return schema


# ---------------------------------------------------------------------------------------------- building blocks


def _table_sql(con: duckdb.DuckDBPyConnection, pinned: _Pinned, area: str, table: str) -> str:
    """Every row of ``table`` in ``area`` at the pinned snapshot."""
    return _files_sql(con, pinned, area, table, None)


def _runs_table_sql(con: duckdb.DuckDBPyConnection, pinned: _Pinned, area: str) -> str:
    """Every commit record of ``area`` at the pinned snapshot, from the rows kept per manifest: the views filter
    on them, and a long uncompacted history has one small ``runs`` file per run."""
    rows = pinned.snapshot.runs_rows(area)
    if rows is None:
        rows = pinned.snapshot.arrow(area, "runs")
    name = pinned.unique("_runs")
    con.register(name, rows)
    return f"select {_columns('runs')} from {name}"


def _runs_sql(
    con: duckdb.DuckDBPyConnection, pinned: _Pinned, area: str, table: str, runs: Sequence[tuple[str, dt.date]]
) -> str:
    """The rows of ``table`` in ``area`` that may belong to ``runs`` (run_id, eval_date), opening only the files
    whose partition and run_id bounds admit them (callers filter on run_id)."""
    return _files_sql(con, pinned, area, table, list(runs))


def _files_sql(
    con: duckdb.DuckDBPyConnection,
    pinned: _Pinned,
    area: str,
    table: str,
    runs: Sequence[tuple[str, dt.date]] | None,
) -> str:
    """A select of ``table``'s columns (in schema order) over the snapshot's files that may hold ``runs`` (all
    files when None)."""
    snapshot = pinned.snapshot
    columns = _columns(table)
    paths = snapshot.files(area, table, runs)
    if paths is None:  # row-level deletes (another engine's merge-on-read): pyiceberg applies them
        name = pinned.unique("_rows")
        con.register(name, snapshot.arrow(area, table, runs))
        return f"select {columns} from {name}"
    if not paths:
        return f"select {columns} from _empty_{table}"
    if snapshot.native:
        # The data files hold every column, eval_date included (no Hive partitioning: paths are just names).
        # union_by_name only once the schema grew (older files lack the new columns): it opens every file at bind.
        # The list travels as a bound parameter into a DuckDB variable: inlined as SQL literals, tens of thousands
        # of paths took 0.1-0.2 s to parse per view, and again for each view built on it.
        listing = pinned.unique("_files")
        con.execute(f"set variable {listing} = ?", [paths])
        by_name = "true" if snapshot.pinned[area, table].evolved else "false"
        return (
            f"select {columns} from read_parquet(getvariable('{listing}'), hive_partitioning = false, "
            f"union_by_name = {by_name})"
        )
    name = pinned.unique("_dataset")
    con.register(name, snapshot.dataset(table, paths))
    return f"select {columns} from {name}"


def _columns(table: str) -> str:
    """``table``'s columns, quoted, in schema order: what every view selects."""
    from evals.schemas import column_names

    return ", ".join(f'"{name}"' for name in column_names(table))


def _row_count(table: str) -> str:
    """SQL: the rows ``table`` got in a run according to its ``row_counts``; null when the record has none."""
    return (
        f"(case when try(json_type(row_counts)) = 'OBJECT' "
        f"then coalesce(try(json_extract_string(row_counts, '$.{table}')::bigint), 0) end)"
    )


def _run_keys(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, dt.date]]:
    return [(str(run_id), eval_date) for run_id, eval_date in con.execute(sql).fetchall()]
