"""The warehouse contract on Iceberg tables, against file:// and a real SeaweedFS S3 bucket."""

import threading
from typing import Any

import pytest
from factories import accuracy_rows, all_tables, latency_rows, publish_run, run_record

from evals.analysis.leaderboard import connect
from evals.errors import ConfigError, SchemaViolation, TerminalError
from evals.validation import revalidate
from evals.warehouse import Warehouse
from evals.warehouse.compaction import compact, compact_all

pytestmark = pytest.mark.integration

FULL = {"runs": 1, "accuracy": 2, "latency": 2, "latency_samples": 40, "all_runs": 1}


def counts(wh: Warehouse) -> dict[str, int]:
    con = connect(wh)
    return {
        t: con.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[index]
        for t in ("runs", "accuracy", "latency", "latency_samples", "all_runs")
    }


def view_rows(con: Any) -> dict[str, list[Any]]:
    return {
        "runs": con.execute("select run_id, status, model_id from runs order by run_id").fetchall(),
        "accuracy": con.execute("select * exclude (schema_version) from accuracy order by run_id, task").fetchall(),
        "latency": con.execute("select run_id, load, ttft_p95_ms from latency order by run_id, load").fetchall(),
        "samples": con.execute(
            "select run_id, request_index, finished_s from latency_samples order by run_id, request_index"
        ).fetchall(),
        "leaderboard": con.execute("select * from leaderboard").fetchall(),
    }


def data_files(wh: Warehouse, table: str) -> int:
    iceberg = wh.tables.existing(table)
    assert iceberg is not None
    return len(list(iceberg.scan().plan_files()))


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
    board = con.execute("select model_id, accuracy, capacity, capacity_ttft_p95_ms from leaderboard").fetchall()
    assert board == [("org/model-a", pytest.approx((0.61 + 0.12) / 2), 8.0, pytest.approx(120.0 * 1.8))]


def test_tables_are_iceberg_tables_with_the_schemas_field_ids_and_partitioning(warehouse_uri: str) -> None:
    from evals.schemas import COLUMNS, SCHEMA_VERSION

    wh = Warehouse(warehouse_uri)
    record = run_record()
    publish_run(wh, record, all_tables(record))
    accuracy = wh.tables.existing("accuracy")
    assert accuracy is not None
    schema = accuracy.schema()
    assert [f.name for f in schema.fields] == [c.name for c in COLUMNS["accuracy"]]
    assert [f.field_id for f in schema.fields] == list(range(1, len(COLUMNS["accuracy"]) + 1))
    assert schema.find_field("run_id").required and not schema.find_field("stderr").required
    (partition,) = accuracy.spec().fields
    assert (partition.name, str(partition.transform)) == ("eval_date", "identity")
    assert accuracy.properties["evals.schema-version"] == str(SCHEMA_VERSION)
    assert accuracy.properties["commit.manifest-merge.enabled"] == "true"
    assert wh.tables.existing("accuracy", "quarantine") is None  # created on first use only


def test_idempotent_rewrite_leaves_one_copy(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    publish_run(wh, record, all_tables(record))
    publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.7, "gsm8k": 0.2}))
    assert counts(wh) == FULL
    assert wh.read_table("accuracy").num_rows == 2  # no stale copy underneath either
    values = connect(wh).execute("select value from accuracy order by task").fetchall()
    assert values == [(0.7,), (0.2,)]


def test_rerun_with_fewer_tables_drops_the_stale_ones(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    publish_run(wh, record, all_tables(record))
    publish_run(wh, record, {"accuracy": accuracy_rows(record)})
    assert counts(wh)["latency"] == 0 and counts(wh)["latency_samples"] == 0


def crash_on_commit(monkeypatch: pytest.MonkeyPatch, table: str, status: str | None = None) -> None:
    """Make the commit to ``table`` (of a runs row with ``status``) fail as if the worker died there."""
    from pyiceberg.table import Table

    real = Table.overwrite

    def overwrite(self: Table, df: Any, *args: Any, **kwargs: Any) -> None:
        if self.name()[-1] == table and (status is None or df.column("status").to_pylist() == [status]):
            raise RuntimeError("worker killed")
        real(self, df, *args, **kwargs)

    monkeypatch.setattr(Table, "overwrite", overwrite)


@pytest.mark.parametrize("dies_at", ["latency", "runs"])
def test_crash_between_tables_publishes_nothing_and_the_retry_completes_it(
    warehouse_uri: str, monkeypatch: pytest.MonkeyPatch, dies_at: str
) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    with monkeypatch.context() as patch:
        crash_on_commit(patch, dies_at)
        with pytest.raises(RuntimeError):
            publish_run(wh, record, all_tables(record))
    assert wh.read_table("accuracy").num_rows == 2  # the accuracy commit landed...
    assert counts(wh) == {"runs": 0, "accuracy": 0, "latency": 0, "latency_samples": 0, "all_runs": 0}  # ...unseen
    publish_run(wh, record, all_tables(record))  # the retry completes it
    assert counts(wh) == FULL


def test_a_rerun_that_dies_half_way_never_shows_a_mix(warehouse_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.5, "gsm8k": 0.1}))
    with monkeypatch.context() as patch:
        crash_on_commit(patch, "latency")  # the rerun's accuracy is committed, its latency is not
        with pytest.raises(RuntimeError):
            publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.9, "gsm8k": 0.9}))
    assert counts(wh)["accuracy"] == 0  # not old, not new, not a mix: withdrawn until the retry
    status = connect(wh).execute("select status, error from all_runs").fetchall()
    assert status[0][0] == "failed" and "interrupted while republishing" in status[0][1]
    publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.9, "gsm8k": 0.9}))
    assert connect(wh).execute("select value from accuracy order by task").fetchall() == [(0.9,), (0.9,)]


def test_concurrent_publishers_of_different_runs_all_land(warehouse_uri: str) -> None:
    records = [run_record(f"org/model-{i}", day=1 + i % 3) for i in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(records))

    def write(rec: Any) -> None:
        try:
            start.wait()
            publish_run(Warehouse(warehouse_uri), rec, all_tables(rec))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    wh = Warehouse(warehouse_uri)
    assert counts(wh) == {"runs": 8, "accuracy": 16, "latency": 16, "latency_samples": 320, "all_runs": 8}
    ids = connect(wh).execute("select run_id, count(*) from accuracy group by 1 having count(*) != 2").fetchall()
    assert ids == []  # no run twice
    assert {r.run_id for r in wh.run_records()} == {r.run_id for r in records}


def test_compaction_while_a_reader_holds_a_snapshot(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    for i in range(3):
        for day in (1, 2):
            record = run_record(f"org/model-{i}", day=day)
            publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.5 + i / 10 + day / 100}))
    reader = connect(wh)
    before = view_rows(reader)
    assert data_files(wh, "accuracy") == 6

    results = compact_all(wh)
    assert {r.table: r.partitions for r in results}["accuracy"] == 2
    assert data_files(wh, "accuracy") == 2 and data_files(wh, "runs") == 2
    assert view_rows(reader) == before  # the held connection: same rows, no missing file
    assert view_rows(connect(wh)) == before  # a new one: the compacted files, same rows

    # A rerun of a compacted run: only its rows change (the compacted file is rewritten without them).
    record = run_record("org/model-0", day=1)
    publish_run(wh, record, all_tables(record, tasks={"arc_easy": 0.99}))
    con = connect(wh)
    assert con.execute(
        f"select value from accuracy where run_id = '{record.run_id}' and task = 'arc_easy'"
    ).fetchall() == [(0.99,)]
    assert counts(wh)["accuracy"] == 6
    after_rerun = view_rows(con)
    assert compact(wh, "accuracy").partitions == 1  # the rerun's partition has two files again
    assert view_rows(connect(wh)) == after_rerun
    assert view_rows(reader) == before


def test_maintenance_expires_snapshots_and_removes_orphans_after_the_retention(warehouse_uri: str) -> None:
    import datetime as dt

    from evals.warehouse.maintenance import maintain, referenced_files

    wh = Warehouse(warehouse_uri)
    started = dt.datetime.now(dt.UTC)
    for i in range(3):
        record = run_record(f"org/model-{i}")
        publish_run(wh, record, all_tables(record))
    compact_all(wh)
    before = view_rows(connect(wh))
    accuracy = wh.tables.existing("accuracy")
    assert accuracy is not None and len(accuracy.snapshots()) > 1

    young = maintain(wh)  # nothing is older than the retention period yet
    assert sum(r.snapshots_expired + r.files_deleted for r in young) == 0

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=wh.settings.snapshot_retention_hours + 1)
    done = {(r.area, r.table): r for r in maintain(wh, now=later)}
    assert done["published", "accuracy"].snapshots_expired > 0
    assert done["published", "accuracy"].files_deleted >= 3  # the three per-run files the compaction replaced
    accuracy = accuracy.refresh()
    assert len(accuracy.snapshots()) == 1
    from pyarrow import fs as pafs

    listed = {i.path for i in wh.fs.get_file_info(_selector(accuracy.location())) if i.type == pafs.FileType.File}
    assert listed - referenced_files(accuracy) == set()  # nothing unreferenced is left
    assert view_rows(connect(wh)) == before
    with pytest.raises(ConfigError, match="keeps snapshots from"):  # expired history is refused, not shown empty
        connect(wh, as_of=started)


def _selector(location: str) -> Any:
    from pyarrow import fs as pafs

    from evals.warehouse.storage import fs_path

    return pafs.FileSelector(fs_path(location), recursive=True)


def test_quarantined_runs_are_invisible_but_readable(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    good, bad = run_record("org/good"), run_record("org/bad")
    publish_run(wh, good, all_tables(good))
    wh.write_run(bad.replace(error="acc 1.3 out of range"), all_tables(bad), status="quarantined")
    assert wh.read_table("accuracy").column("run_id").to_pylist() == [good.run_id] * 2  # other namespace
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
    assert wh.read_table("accuracy", area="quarantine").num_rows == 0


def test_a_table_of_the_previous_schema_gains_the_new_column(
    warehouse_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evals import schemas

    wh = Warehouse(warehouse_uri)
    old = run_record("org/old", day=1)
    previous = [c for c in schemas.COLUMNS["accuracy"] if c.name != "task_version"]  # as if added in this version
    with monkeypatch.context() as patch:
        patch.setitem(schemas.COLUMNS, "accuracy", previous)
        rows = [{k: v for k, v in row.items() if k != "task_version"} for row in accuracy_rows(old)]
        publish_run(wh, old, {"accuracy": rows})
    accuracy = wh.tables.existing("accuracy")
    assert accuracy is not None and "task_version" not in [f.name for f in accuracy.schema().fields]

    new = run_record("org/new", day=2)
    publish_run(Warehouse(warehouse_uri), new, {"accuracy": accuracy_rows(new)})  # evolves, then writes
    accuracy = accuracy.refresh()
    assert accuracy.schema().find_field("task_version").field_id == len(previous) + 1  # a new id, none reused
    con = connect(wh)
    got = con.execute("select model_id, task, task_version from accuracy order by model_id, task").fetchall()
    assert got == [
        ("org/new", "arc_easy", "1.0"),
        ("org/new", "gsm8k", "1.0"),
        ("org/old", "arc_easy", None),
        ("org/old", "gsm8k", None),
    ]
    assert wh.read_table("accuracy").num_rows == 4


def test_time_travel_shows_the_leaderboard_as_it_was(warehouse_uri: str) -> None:
    import datetime as dt
    import time

    wh = Warehouse(warehouse_uri)
    first = run_record("org/a", day=1)
    publish_run(wh, first, all_tables(first, tasks={"arc_easy": 0.4, "gsm8k": 0.2}))
    then = connect(wh).execute("select * from leaderboard").fetchall()
    time.sleep(0.01)
    moment = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    # The next night: a new revision of org/a and a new model.
    for rec in (run_record("org/a", day=2, revision="c" * 40), run_record("org/b", day=2)):
        publish_run(wh, rec, all_tables(rec, tasks={"arc_easy": 0.9, "gsm8k": 0.8}))
    now = connect(wh).execute("select * from leaderboard").fetchall()
    assert now != then and len(now) == 2
    assert connect(wh, as_of=moment).execute("select * from leaderboard").fetchall() == then
    before_anything = connect(wh, as_of=moment - dt.timedelta(days=1))
    assert before_anything.execute("select count(*) from all_runs").fetchone() == (0,)


def test_schema_violation_writes_nothing(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    record = run_record()
    tables = all_tables(record)
    tables["latency"] = latency_rows(record)
    tables["latency"][1]["ttft_p95_ms"] = "fast"
    with pytest.raises(SchemaViolation, match="table 'latency', column 'ttft_p95_ms'"):
        publish_run(wh, record, tables)
    assert wh.read_table("accuracy").num_rows == 0  # refused before the first commit
    assert wh.run_records() == []


def test_a_published_write_needs_the_gates_approval_for_exactly_these_rows(warehouse_uri: str) -> None:
    from evals.warehouse.approval import Approval
    from evals.warehouse.rows import conform_run_table

    wh = Warehouse(warehouse_uri)
    record = run_record()
    with pytest.raises(TerminalError, match="validation gate"):
        wh.write_run(record, all_tables(record))
    approved = {"accuracy": conform_run_table("accuracy", accuracy_rows(record), record)}
    approval = Approval.issue(record.run_id, approved)
    changed = accuracy_rows(record, tasks={"arc_easy": 0.99, "gsm8k": 0.12})
    with pytest.raises(TerminalError, match="differ from the rows"):
        wh.write_run(record, {"accuracy": changed}, approval=approval)
    assert wh.read_table("accuracy").num_rows == 0 and wh.run_records() == []  # refused before any commit
    wh.write_run(record, approved, approval=approval)
    assert counts(wh)["accuracy"] == 2


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


def scoped_rows(wh: Warehouse, model_id: str) -> dict[str, list[Any]]:
    con = connect(wh)
    schema = con.scope([model_id])
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
    before = scoped_rows(wh, "org/model-1")
    assert len(before["runs"]) == 3 and len(before["accuracy"]) == 3
    compact_all(wh, end=run_record(day=2).eval_date)  # days 1-2 compacted, day 3 per-run files
    rerun = run_record("org/model-1", day=1)
    publish_run(wh, rerun, all_tables(rerun, tasks={"arc_easy": 0.99}))
    after = scoped_rows(wh, "org/model-1")
    assert len(after["accuracy"]) == 3
    con = connect(wh)
    con.scope(["org/model-1"], schema="one")
    assert con.execute(f"select value from one.accuracy where run_id = '{rerun.run_id}'").fetchall() == [(0.99,)]


def test_leaderboard_looks_at_the_data_not_at_row_counts(warehouse_uri: str) -> None:
    from evals.conformance import conform

    wh = Warehouse(warehouse_uri)
    a, b = run_record("org/a"), run_record("org/b")
    publish_run(wh, a, all_tables(a))
    publish_run(wh, b, {"latency": latency_rows(b)})
    # A commit record written by hand without row_counts: the leaderboard checks the data instead.
    row = a.replace(status="published", row_counts=None).to_row()
    wh.committing("hand-written runs row", lambda: wh.tables.load("runs").overwrite(conform("runs", [row]), _of(a)))
    board = (
        connect(wh).execute("select model_id, accuracy is not null, capacity from leaderboard order by 1").fetchall()
    )
    assert board == [("org/a", True, 8.0), ("org/b", False, 8.0)]


def _of(record: Any) -> Any:
    from evals.warehouse.rows import run_filter

    return run_filter(record)


def test_stale_staging_is_swept(warehouse_uri: str) -> None:
    import datetime as dt

    wh = Warehouse(warehouse_uri)
    staged = wh.stage("abc", {"accuracy": [{"value": float("nan")}]})
    assert wh.read_staged(staged)["accuracy"][0]["value"] != 0  # NaN survives staging as it was produced
    assert wh.sweep_staging(dt.timedelta(days=1)) == 0  # fresh: kept
    assert wh.sweep_staging(dt.timedelta(seconds=-60)) == 1  # "older than the future": swept
    assert not wh.storage.exists(staged["accuracy"])


def test_a_latency_only_run_is_its_own_board_and_never_hides_the_accuracy_run(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    first = run_record("org/a", day=1)
    publish_run(wh, first, all_tables(first))
    # A later latency-only run of a new revision: its own (no suite, scenario) board; every number of a row comes
    # from one run, so the accuracy board keeps the revision that was measured for accuracy.
    later = run_record("org/a", day=2, revision="b" * 40, suite=None, suite_version=None)
    publish_run(wh, later, {"latency": latency_rows(later), "latency_samples": all_tables(later)["latency_samples"]})
    rows = connect(wh).execute("select suite, revision, accuracy is not null from leaderboard order by 1").fetchall()
    assert rows == [("smoke", first.revision, True), (None, "b" * 40, False)]
