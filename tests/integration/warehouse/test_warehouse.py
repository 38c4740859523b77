"""The warehouse contract, against file:// and a real SeaweedFS S3 bucket."""

import threading
from typing import Any

import pytest
from factories import accuracy_rows, all_tables, latency_rows, publish_run, run_record

from evals.validation import revalidate
from evals.analysis.views import connect, scope
from evals.errors import SchemaViolation
from evals.warehouse import Warehouse
from evals.warehouse.compaction import compact, compact_all
from evals.warehouse.storage import Storage

pytestmark = pytest.mark.integration


def counts(wh: Warehouse) -> dict[str, int]:
    con = connect(wh)
    return {
        t: con.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[index]
        for t in ("runs", "accuracy", "latency", "latency_samples", "all_runs")
    }


def snapshot(wh: Warehouse) -> dict[str, list[Any]]:
    con = connect(wh)
    return {
        "runs": con.execute("select run_id, status, model_id from runs order by run_id").fetchall(),
        "accuracy": con.execute("select * exclude (schema_version) from accuracy order by run_id, task").fetchall(),
        "latency": con.execute("select run_id, load, ttft_p95_ms from latency order by run_id, load").fetchall(),
        "samples": con.execute(
            "select run_id, request_index, finished_s from latency_samples order by run_id, request_index"
        ).fetchall(),
        "leaderboard": con.execute("select * from leaderboard").fetchall(),
    }


def test_round_trip(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    written = publish_run(wh, record, all_tables(record))
    assert written.row_counts == {"accuracy": 2, "latency": 2, "latency_samples": 40}
    con = connect(wh)
    acc = con.execute("select task, metric, filter, value, stderr from accuracy order by task").fetchall()
    assert acc == [
        ("arc_easy", "acc", "none", 0.61, 0.01),
        ("gsm8k", "exact_match", "strict-match", 0.12, 0.01),
    ]
    run = con.execute("select run_id, status, revision, eval_date::varchar, versions.lm_eval from runs").fetchone()
    assert run == (record.run_id, "published", record.revision, "2026-11-01", "0.4.13")
    itl = con.execute("select itl_ms from latency_samples where request_index = 0").fetchone()
    assert itl is not None and len(itl[0]) == 15
    board = con.execute("select model_id, accuracy, load, ttft_p95_ms from leaderboard").fetchall()
    assert board == [("org/model-a", pytest.approx((0.61 + 0.12) / 2), 8.0, pytest.approx(120.0 * 1.8))]


def test_idempotent_rewrite_leaves_one_copy(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    publish_run(wh, record, all_tables(record))
    publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.7, "gsm8k": 0.2}))
    assert counts(wh) == {"runs": 1, "accuracy": 2, "latency": 2, "latency_samples": 40, "all_runs": 1}
    values = connect(wh).execute("select value from accuracy order by task").fetchall()
    assert values == [(0.7,), (0.2,)]


def test_rerun_with_fewer_tables_drops_the_stale_ones(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    publish_run(wh, record, all_tables(record))
    publish_run(wh, record, {"accuracy": accuracy_rows(record)})
    assert counts(wh)["latency"] == 0 and counts(wh)["latency_samples"] == 0


def crash_on_commit(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the commit (the final runs row) fail as if the worker died; returns the real write to restore."""
    real_write = Storage.write_parquet

    def write(self: Storage, relative: str, table: Any, **kw: Any) -> None:
        if relative.startswith("runs/") and table.column("status").to_pylist() == ["published"]:
            raise RuntimeError("worker killed")
        real_write(self, relative, table, **kw)

    monkeypatch.setattr(Storage, "write_parquet", write)
    return real_write


def test_crash_between_data_and_commit_leaves_nothing_visible(
    warehouse_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    real_write = crash_on_commit(monkeypatch)
    with pytest.raises(RuntimeError):
        publish_run(wh, record, all_tables(record))
    assert wh.read_table("accuracy").num_rows == 2  # the data files are there...
    assert counts(wh) == {"runs": 0, "accuracy": 0, "latency": 0, "latency_samples": 0, "all_runs": 1}  # ...unseen
    status = connect(wh).execute("select status, error from all_runs").fetchall()
    assert status[0][0] == "failed" and "interrupted while publishing" in status[0][1]

    monkeypatch.setattr(Storage, "write_parquet", real_write)
    publish_run(wh, record, all_tables(record))  # the retry completes it
    assert counts(wh) == {"runs": 1, "accuracy": 2, "latency": 2, "latency_samples": 40, "all_runs": 1}


def test_a_rerun_that_dies_half_way_never_shows_a_mix(warehouse_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.5, "gsm8k": 0.1}))
    real_write = crash_on_commit(monkeypatch)
    with pytest.raises(RuntimeError):  # the rerun's new data files are written, its commit is not
        publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.9, "gsm8k": 0.9}))
    assert counts(wh)["accuracy"] == 0  # not old, not new, not a mix: uncommitted until the retry
    monkeypatch.setattr(Storage, "write_parquet", real_write)
    publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.9, "gsm8k": 0.9}))
    assert connect(wh).execute("select value from accuracy order by task").fetchall() == [(0.9,), (0.9,)]


def test_rerun_with_fewer_tables_after_compaction(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    for model in ("org/a", "org/b"):
        rec = run_record(model)
        publish_run(wh, rec, all_tables(rec))
    compact_all(wh)
    record = run_record("org/a")
    publish_run(wh, record, {"accuracy": accuracy_rows(record)})  # the rerun has no latency this time
    con = connect(wh)
    rows = con.execute("select model_id, count(*) from latency group by 1 order by 1").fetchall()
    assert rows == [("org/b", 2)]  # org/a's compacted latency rows do not show through


def test_concurrent_writers_of_different_runs(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    records = [run_record(f"org/model-{i}", day=1 + i % 3) for i in range(8)]
    errors: list[BaseException] = []

    def write(rec: Any) -> None:
        try:
            publish_run(Warehouse(warehouse_uri), rec, all_tables(rec))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert counts(wh) == {"runs": 8, "accuracy": 16, "latency": 16, "latency_samples": 320, "all_runs": 8}


def test_compaction_preserves_query_results_at_every_step(warehouse_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wh = Warehouse(warehouse_uri)
    for i in range(3):
        for day in (1, 2):
            record = run_record(f"org/model-{i}", day=day)
            publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.5 + i / 10 + day / 100}))
    before = snapshot(wh)

    from evals.warehouse import compaction

    observed: list[dict[str, list[Any]]] = []
    real_delete = compaction._delete_if_unchanged

    def delete_and_observe(warehouse: Warehouse, info: Any) -> None:
        observed.append(snapshot(wh))  # merged file written, some per-run files still there
        real_delete(warehouse, info)

    monkeypatch.setattr(compaction, "_delete_if_unchanged", delete_and_observe)
    results = compact_all(wh)
    assert observed and all(view == before for view in observed)
    assert snapshot(wh) == before
    assert {r.table: r.partitions for r in results}["accuracy"] == 2
    for table in ("accuracy", "runs"):
        files = wh.table_files(table)
        assert (len(files.per_run), len(files.compacted)) == (0, 2)

    # A rerun of an already-compacted run: its new per-run file wins over the compacted copy.
    record = run_record("org/model-0", day=1)
    publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.99}))
    con = connect(wh)
    assert con.execute(
        f"select value from accuracy where run_id = '{record.run_id}' and task = 'arc_easy'"
    ).fetchall() == [(0.99,)]
    assert counts(wh)["accuracy"] == 6
    # Compacting again folds it in: next generation, the old one removed, same results.
    after_rerun = snapshot(wh)
    compact(wh, "accuracy")
    assert snapshot(wh) == after_rerun
    assert [p.rsplit("/", 1)[1] for p in wh.table_files("accuracy").compacted if "2026-11-01" in p] == [
        "compacted-g000002.parquet"
    ]


def test_quarantined_runs_are_invisible_but_readable(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    good, bad = run_record("org/good"), run_record("org/bad")
    publish_run(wh, good, all_tables(good))
    wh.write_run(bad.replace(error="acc 1.3 out of range"), all_tables(bad), status="quarantined")
    con = connect(wh)
    assert con.execute("select model_id from runs").fetchall() == [("org/good",)]
    assert con.execute("select distinct model_id from accuracy").fetchall() == [("org/good",)]
    assert con.execute("select model_id from leaderboard").fetchall() == [("org/good",)]
    assert con.execute("select model_id, error from quarantined_runs").fetchall() == [
        ("org/bad", "acc 1.3 out of range")
    ]
    assert con.execute("select count(*) from quarantined_accuracy").fetchone() == (2,)
    assert {r.status for r in wh.run_records()} == {"published", "quarantined"}

    published, _ = revalidate(bad.run_id, warehouse=wh)  # e.g. after a threshold change: through the gate again
    assert published.status == "published"
    assert counts(wh) == {"runs": 2, "accuracy": 4, "latency": 4, "latency_samples": 80, "all_runs": 2}
    assert connect(wh).execute("select count(*) from quarantined_runs").fetchone() == (0,)


def test_schema_violation_writes_nothing(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    tables = all_tables(record)
    tables["latency"] = latency_rows(record)
    tables["latency"][1]["ttft_p95_ms"] = "fast"
    with pytest.raises(SchemaViolation, match="table 'latency', column 'ttft_p95_ms'"):
        publish_run(wh, record, tables)
    assert wh.read_table("accuracy").num_rows == 0  # refused before the first file
    assert wh.run_records() == []


def test_rows_of_another_run_are_refused(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    a, b = run_record("org/a"), run_record("org/b")
    rows = [{**row, "run_id": b.run_id} for row in accuracy_rows(a)]
    with pytest.raises(SchemaViolation, match="every row must belong to run"):
        publish_run(wh, a, {"accuracy": rows})


def test_failure_record_never_hides_a_published_run(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    failed = wh.record_failure(record, "server did not start")
    assert failed.status == "failed"
    assert connect(wh).execute("select status, error from all_runs").fetchall() == [("failed", "server did not start")]
    publish_run(wh, record, all_tables(record))
    assert wh.record_failure(record, "flaky rerun").status == "published"
    assert counts(wh)["runs"] == 1


def scoped_snapshot(wh: Warehouse, model_id: str) -> dict[str, list[Any]]:
    con = connect(wh)
    schema = scope(con, [model_id])
    out = {}
    for table in ("runs", "accuracy", "latency", "latency_samples"):
        order = "run_id" if table == "runs" else "all"
        full = con.execute(f"select * from {table} where model_id = $m order by {order}", {"m": model_id}).fetchall()
        assert con.execute(f"select * from {schema}.{table} order by {order}").fetchall() == full, table
        out[table] = full
    return out


def test_scope_reads_only_the_models_runs_and_matches_the_views(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    for i in range(3):
        for day in (1, 2, 3):
            record = run_record(f"org/model-{i}", day=day)
            publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.5 + i / 10 + day / 100}))
    bad = run_record("org/model-1", day=4)
    wh.write_run(bad, all_tables(bad), status="quarantined")  # never in scope: not published
    before = scoped_snapshot(wh, "org/model-1")
    assert len(before["runs"]) == 3 and len(before["accuracy"]) == 3
    compact_all(wh, end=run_record(day=2).eval_date)  # days 1-2 compacted, day 3 per-run files
    rerun = run_record("org/model-1", day=1)  # a rerun after compaction: its per-run file wins
    publish_run(wh, rerun, all_tables(rerun, tasks={"arc_easy": 0.99}))
    after = scoped_snapshot(wh, "org/model-1")
    assert len(after["accuracy"]) == 3
    con = connect(wh)
    scope(con, ["org/model-1"], schema="one")
    assert con.execute(f"select value from one.accuracy where run_id = '{rerun.run_id}'").fetchall() == [(0.99,)]


def test_leaderboard_without_row_counts_looks_at_the_data(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    a, b = run_record("org/a"), run_record("org/b")
    publish_run(wh, a, all_tables(a))
    publish_run(wh, b, {"latency": latency_rows(b)})
    # A hand-written commit record without row_counts: the leaderboard checks the data instead.
    import pyarrow.parquet as pq

    from evals.warehouse import keys

    path = wh.storage.path(keys.run_file("runs", a.eval_date, a.run_id))
    row = pq.read_table(path, filesystem=wh.fs)
    pq.write_table(
        row.set_column(row.schema.get_field_index("row_counts"), "row_counts", [[None]]), path, filesystem=wh.fs
    )
    board = connect(wh).execute("select model_id, accuracy is not null, load from leaderboard order by 1").fetchall()
    assert board == [("org/a", True, 8.0), ("org/b", False, 8.0)]


def test_stale_staging_is_swept(warehouse_uri: str) -> None:
    import datetime as dt

    wh = Warehouse(warehouse_uri)
    staged = wh.stage("abc", {"accuracy": [{"value": float("nan")}]})
    assert wh.read_staged(staged)["accuracy"][0]["value"] != 0  # NaN survives staging as it was produced
    assert wh.sweep_staging(dt.timedelta(days=1)) == 0  # fresh: kept
    assert wh.sweep_staging(dt.timedelta(seconds=-60)) == 1  # "older than the future": swept
    assert not wh.storage.exists(staged["accuracy"])


def test_leaderboard_names_the_revision_latency_was_measured_on(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    first = run_record("org/a", day=1)
    publish_run(wh, first, all_tables(first))
    # A later latency-only run of a new revision: accuracy still comes from the first run.
    later = run_record("org/a", day=2, revision="b" * 40, suite=None, suite_version=None)
    publish_run(wh, later, {"latency": latency_rows(later), "latency_samples": all_tables(later)["latency_samples"]})
    row = connect(wh).execute("select revision, latency_revision from leaderboard").fetchall()
    assert row == [(first.revision, "b" * 40)]
