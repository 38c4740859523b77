"""The read model: DuckDB views over the Iceberg warehouse pinned at one snapshot (published runs only, per table).

A connection reads each table at the snapshot that was current when :func:`connect` ran (or at ``as_of``: time
travel), so a query never sees a half-applied commit, and compaction or publication meanwhile changes nothing it
reads. The file list of a view comes from Iceberg's planning (``plan_files``: manifests, partition and column-bound
pruning), never from listing storage. file:// warehouses are scanned by DuckDB's own multi-threaded Parquet reader
over that explicit list; s3:// ones through ``pyarrow.dataset`` objects, because DuckDB 2.x cannot install httpfs
offline. What keeps the views fast on a long history (``bench/query_scaling.py``):

- the commit records (``all_runs``) are read once per connection into a table: every data view filters on them;
- queries that need a few runs plan only those runs' files (filter on eval_date and run_id):
  :meth:`ReadModel.scope_runs` gives views over chosen runs (the leaderboard's latest runs), :meth:`ReadModel.scope`
  over the runs of chosen models (e.g. a model's 3-year trend). A fixed view cannot do this itself: DuckDB does
  not push join-derived filters into a file list.

- the views themselves are defined the first time a query names them (with the views they read): opening
  plans no table's files and defines none of the ~35 views, so a command that reads two tables pays for two.

Relations computed by a layer above (the ``leaderboard``, a ranking in Python) are registered as ``derived``: each
is computed the first time a query names it, so a connection that never asks for it never pays for it.

The rule the views apply, and external engines must apply too: a data row counts when its run has a ``runs`` row
with status ``published`` (written after the run's data tables).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from evals.schemas import DATA_TABLES, RUN_STATUSES, TABLES

if TYPE_CHECKING:
    import datetime as dt

    import duckdb
    import pyarrow as pa

    from evals.warehouse import Warehouse
    from evals.warehouse.snapshots import Snapshot

_STATUS_ORDER = "list_position([" + ", ".join(f"'{s}'" for s in RUN_STATUSES) + "], status)"
_AREAS = ("published", "quarantine")
_DATA_TABLES = DATA_TABLES

# A relation computed above the warehouse from the read model itself (e.g. the leaderboard): rows as Arrow.
Derived = Callable[["ReadModel"], "pa.Table"]
# A view not defined yet: called once, it returns the statement that defines it (or "" once it defined itself).
Pending = Callable[[], str]
# A name in the main schema: not qualified by another schema (``scoped.runs`` is not ``runs``), or by ``main.``.
_IDENTIFIER = re.compile(r"(?:(?<=\bmain\.)|(?<![\w.]))[A-Za-z_][A-Za-z0-9_]*", re.IGNORECASE)


@dataclass
class _Pinned:
    """What a connection was opened on: the warehouse's tables pinned at one snapshot each."""

    snapshot: Snapshot
    names: Iterator[int] = field(default_factory=itertools.count)

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"


class ReadModel:
    """The warehouse as DuckDB views at one pinned snapshot: it owns the connection and the snapshot behind it.

    ``execute``/``sql`` answer like a DuckDB connection; a query first defines the views it names and computes the
    derived relations it names. ``con`` is the raw connection: it holds only what queries through here defined.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        pinned: _Pinned,
        derived: Mapping[str, Derived],
        pending: Mapping[str, Pending] | None = None,
    ) -> None:
        self.con = con
        self._pinned = pinned
        self._derived = dict(derived)
        self._pending = dict(pending or {})

    @property
    def snapshot(self) -> Snapshot:
        return self._pinned.snapshot

    def execute(self, query: str, parameters: object = None) -> duckdb.DuckDBPyConnection:
        self._derive_named(query)
        return self.con.execute(query, parameters)

    def sql(self, query: str, **kwargs: Any) -> duckdb.DuckDBPyRelation:
        self._derive_named(query)
        return self.con.sql(query, **kwargs)

    def register(self, name: str, data: object) -> None:
        self.con.register(name, data)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ReadModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ensure(self, *names: str) -> None:
        """Define the views ``names`` now (and those they read): for a query that names a relation only as a
        parameter, e.g. ``information_schema`` lookups. Derived relations stay uncomputed."""
        for name in names:
            self._define(name.lower())

    def _define(self, name: str) -> None:
        statement = self._pending.pop(name, None)
        if statement is None:
            return
        # A result left unread blocks register() (DuckDB 2); the query about to run would replace it anyway.
        self.con.abort()
        self._execute_defined(statement())

    def _execute_defined(self, ddl: str) -> None:
        """Run ``ddl`` (nothing when empty) once the views it names are defined."""
        for dependency in _named(ddl, self._pending):
            self._define(dependency)
        if ddl:
            self.con.execute(ddl)

    def derive(self, name: str) -> None:
        """Compute the derived relation ``name`` now (registered as a DuckDB table of that name)."""
        compute = self._derived.pop(name, None)
        if compute is not None:
            self.con.register(f"_derived_{name}", compute(self))
            self.con.execute(f"create or replace table {name} as select * from _derived_{name}")
            self.con.unregister(f"_derived_{name}")

    def _derive_named(self, query: str) -> None:
        for name in _named(query, self._pending):
            self._define(name)
        for name in _named(query, self._derived):
            self.derive(name)

    def scope(self, model_ids: Sequence[str], *, schema: str = "scoped") -> str:
        """Views of the published runs of ``model_ids`` only, in schema ``schema`` (returned), reading only their
        files: ``<schema>.runs`` and ``<schema>.<data table>`` hold exactly the rows of the same views for those
        models, at the same snapshot, but open only the files Iceberg plans for those runs (partition and run_id
        bounds): one model's 3-year trend reads a few hundred files rather than the whole history. Calling it
        again replaces the schema's views."""
        _identifier(schema)
        self.ensure("runs")
        self.con.execute(f"create schema if not exists {schema}")
        self.con.execute(
            f"create or replace table {schema}.runs as select * from main.runs where model_id in (select unnest($1))",
            [sorted(set(model_ids))],
        )
        return self._scope_views(schema)

    def scope_runs(self, runs: Sequence[str], *, schema: str) -> str:
        """Like :meth:`scope`, for the published runs ``runs`` (run ids)."""
        _identifier(schema)
        self.ensure("runs")
        self.con.execute(f"create schema if not exists {schema}")
        self.con.execute(
            f"create or replace table {schema}.runs as select * from main.runs where run_id in (select unnest($1))",
            [sorted(set(runs))],
        )
        return self._scope_views(schema)

    def _scope_views(self, schema: str) -> str:
        runs = _run_keys(self.con, f"select run_id, eval_date from {schema}.runs")
        for table in _DATA_TABLES:
            self._execute_defined(
                f"create or replace view {schema}.{table} as select * from "
                f"({_runs_sql(self.con, self._pinned, 'published', table, runs)}) "
                f"where run_id in (select run_id from {schema}.runs)"
            )
        return schema


def _named(sql: str, names: Mapping[str, object]) -> list[str]:
    """The names of ``names`` that ``sql`` mentions as identifiers (DuckDB's are case-insensitive)."""
    if not names:
        return []
    return sorted({token.lower() for token in _IDENTIFIER.findall(sql)} & names.keys())


def _identifier(schema: str) -> None:
    if not schema.isidentifier():
        raise ValueError(f"schema must be a plain identifier, got {schema!r}")


def connect(
    warehouse: Warehouse | None = None,
    *,
    as_of: dt.datetime | None = None,
    derived: Mapping[str, Derived] | None = None,
) -> ReadModel:
    """An in-memory DuckDB connection whose views read the warehouse pinned now (or as it was at ``as_of``).

    Views: ``runs``, ``accuracy``, ``latency``, ``latency_samples``, ``comparisons``, ... (every data table of
    ``evals.schemas``; published runs only), ``all_runs`` (every run record: published, quarantined, failed),
    ``quarantined_<table>`` (quarantined data), and the ``derived`` relations (computed when a query names them;
    :func:`evals.analysis.leaderboard.connect` adds the ``leaderboard``). The same code serves file:// (DuckDB's
    Parquet reader) and s3:// (pyarrow datasets).
    """
    import duckdb

    from evals.schemas import arrow_schema
    from evals.warehouse import Warehouse
    from evals.warehouse.snapshots import Snapshot

    warehouse = warehouse or Warehouse.from_settings()
    pinned = _Pinned(Snapshot(warehouse, as_of))
    con = duckdb.connect()
    pending: dict[str, Pending] = {}

    def register_empty(table: str) -> str:
        con.register(f"_empty_{table}", arrow_schema(table).empty_table())
        return ""

    def view(name: str, sql: str | Callable[[], str]) -> None:
        pending[name] = lambda: f"create view {name} as {sql if isinstance(sql, str) else sql()}"

    for table in TABLES:
        pending[f"_empty_{table}"] = partial(register_empty, table)
    for area in _AREAS:
        for table in _DATA_TABLES:
            view(f"_{area}_{table}", partial(_table_sql, con, pinned, area, table))
    # The commit records, read now, once: every other view filters on them.
    con.execute(
        f"""create table _all_runs as
        select * exclude (_rank) from (
            select *, row_number() over (partition by run_id order by {_STATUS_ORDER}) as _rank
            from ({_runs_table_sql(con, pinned, "published")}
                  union all {_runs_table_sql(con, pinned, "quarantine")})
        ) where _rank = 1"""
    )
    view("all_runs", "select * from _all_runs")
    view("runs", "select * from all_runs where status = 'published'")
    view("quarantined_runs", "select * from all_runs where status = 'quarantined'")
    for table in _DATA_TABLES:
        view(table, f"select * from _published_{table} where run_id in (select run_id from runs)")
        view(
            f"quarantined_{table}",
            f"select * from _quarantine_{table} where run_id in (select run_id from quarantined_runs)",
        )

    return ReadModel(con, pinned, derived or {}, pending)


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
