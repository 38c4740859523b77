"""The read model defines its views when a query first names them, and still reads the snapshot it was opened on:
commits, reruns and compaction after the open change nothing it shows."""

from typing import Any

import pytest
from factories import all_tables, publish_run, run_record

from evals.analysis.leaderboard import connect
from evals.report.figure_data import columns
from evals.schemas import column_names
from evals.warehouse import Warehouse
from evals.warehouse.compaction import compact_all

pytestmark = pytest.mark.integration


def defined(con: Any) -> set[str]:
    """Views and tables of the main schema the DuckDB connection holds now (asked of DuckDB, not of the read model)."""
    rows = con.con.execute(
        "select view_name from duckdb_views() where not internal and schema_name = 'main' "
        "union all select table_name from duckdb_tables() where schema_name = 'main'"
    ).fetchall()
    return {name for (name,) in rows}


def arc_easy(con: Any) -> dict[str, float]:
    rows = con.execute("select run_id, value from accuracy where task = 'arc_easy'").fetchall()
    return dict(rows)


def test_views_defined_after_later_commits_read_the_snapshot_of_the_open(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    first = [run_record(f"org/model-{i}", day=1) for i in range(2)]
    for record in first:
        publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.5}))
    reader = connect(wh)

    publish_run(wh, first[0], all_tables(first[0], tasks={"arc_easy": 0.9}))  # a rerun replaces its rows
    later = run_record("org/model-2", day=2)
    publish_run(wh, later, all_tables(later, tasks={"arc_easy": 0.7}))
    compact_all(wh)

    # The reader's first query comes after all that: it plans the files of the snapshot it was opened on.
    assert arc_easy(reader) == {first[0].run_id: 0.5, first[1].run_id: 0.5}
    assert reader.execute("select count(*) from runs").fetchone() == (2,)
    assert arc_easy(connect(wh)) == {first[0].run_id: 0.9, first[1].run_id: 0.5, later.run_id: 0.7}


def test_a_query_defines_only_the_views_it_names(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    publish_run(wh, record, all_tables(record))
    con = connect(wh)
    # The commit records are read at the open (registered as _runs<n>, kept in _all_runs); nothing else is defined.
    assert {name for name in defined(con) if not name.startswith("_runs")} == {"_all_runs"}

    assert con.execute("select count(*) from latency").fetchone() == (2,)
    assert {"latency", "_published_latency", "runs", "all_runs"} <= defined(con)
    assert not {"accuracy", "latency_samples", "quarantined_latency"} & defined(con)

    schema = con.scope([record.model_id])
    assert con.execute(f"select count(*) from {schema}.accuracy").fetchone() == (2,)
    assert "accuracy" not in defined(con)  # the scoped view plans its own files, not the whole table's


def test_a_view_named_only_as_a_parameter_or_after_an_unread_result(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    publish_run(wh, record, {"accuracy": all_tables(record)["accuracy"]})
    con = connect(wh)
    assert columns(con, "latency") == column_names("latency")  # information_schema is asked with a parameter

    con.execute("select * from runs")  # its result left unread
    assert con.execute("select count(*) from latency_samples").fetchone() == (0,)  # an empty table's view
    assert con.execute("select count(*) from quarantined_accuracy").fetchone() == (0,)
