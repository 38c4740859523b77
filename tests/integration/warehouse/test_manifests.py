"""Decoded manifests kept per machine: the same files and rows as pyiceberg's own planner, reused, never stale."""

import datetime as dt
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from factories import all_tables, publish_run, run_record

from evals.analysis.leaderboard import connect
from evals.warehouse import Warehouse
from evals.warehouse.manifests import ManifestCache
from evals.warehouse.snapshots import Snapshot, runs_filter
from evals.warehouse.storage import fs_path

pytestmark = pytest.mark.integration

TABLES = ("runs", "accuracy", "latency", "latency_samples")


def history(wh: Warehouse) -> list[tuple[str, dt.date]]:
    """Three models on each of two nights: several runs (files) in each eval_date partition."""
    runs = []
    for day in (1, 2):
        for model in ("org/a", "org/b", "org/c"):
            record = publish_run(wh, run_record(model, day=day), all_tables(run_record(model, day=day)))
            runs.append((record.run_id, record.eval_date))
    return runs


def planned(wh: Warehouse, table: str, runs: list[tuple[str, dt.date]] | None = None) -> set[str]:
    """pyiceberg's own answer: the files its scan planner keeps (partition and metrics pruning)."""
    iceberg = wh.tables.existing(table)
    assert iceberg is not None
    scan = iceberg.scan(row_filter=runs_filter(runs)) if runs is not None else iceberg.scan()
    return {fs_path(task.file.file_path) for task in scan.plan_files()}


def answers(wh: Warehouse) -> list[object]:
    con = connect(wh)
    try:
        return [
            con.execute("select run_id, model_id, status from all_runs order by run_id").fetchall(),
            con.execute("select run_id, task, value from accuracy order by run_id, task").fetchall(),
            con.execute("select count(*), round(sum(finished_s), 6) from latency_samples").fetchall(),
            con.execute("select * from leaderboard").fetchall(),
        ]
    finally:
        con.close()


@pytest.mark.parametrize("warehouse_uri", ["file"], indirect=True)
def test_files_are_the_planners_files_and_bounds_hold_each_files_runs(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    runs = history(wh)
    snapshot = Snapshot(wh)
    for table in TABLES:
        assert set(snapshot.files("published", table) or []) == planned(wh, table)
        listing = snapshot.live_files("published", table)
        assert listing is not None
        for path, eval_date, low, high in zip(
            *(listing.column(c).to_pylist() for c in listing.column_names), strict=True
        ):
            rows = pq.read_table(fs_path(path), columns=["run_id", "eval_date"])
            assert set(rows.column("eval_date").to_pylist()) == {eval_date}
            assert all(low <= run_id <= high for run_id in rows.column("run_id").to_pylist())
        # A chosen run per night: never fewer files than the planner (a run's rows would be lost), and here
        # the bounds single out the same ones.
        chosen = [runs[0], runs[4]]
        assert set(snapshot.files("published", table, chosen) or []) == planned(wh, table, chosen)


@pytest.mark.parametrize("warehouse_uri", ["file"], indirect=True)
def test_a_later_open_decodes_nothing_and_answers_the_same(
    warehouse_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyiceberg.manifest import ManifestFile

    wh = Warehouse(warehouse_uri)
    history(wh)
    first = answers(wh)
    cached = sorted((tmp_path / "manifest-cache").iterdir())
    assert any(p.name.startswith("files-") for p in cached) and any(p.name.startswith("rows-") for p in cached)

    # Another process on this machine: an empty in-memory cache over the same directory, and no manifest
    # entry or runs data file may be read again.
    monkeypatch.setattr("evals.warehouse.manifests._CACHES", {})

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a manifest was decoded again")

    monkeypatch.setattr(ManifestFile, "fetch_manifest_entry", refuse)
    assert answers(wh) == first


@pytest.mark.parametrize("warehouse_uri", ["file", "s3"], indirect=True)
def test_a_new_commit_is_seen_and_an_unreadable_cache_file_is_decoded_again(warehouse_uri: str, tmp_path: Path) -> None:
    wh = Warehouse(warehouse_uri)
    history(wh)
    before = answers(wh)
    record = run_record("org/d", day=3)
    publish_run(wh, record, all_tables(record))
    after = answers(wh)
    assert len(after[0]) == len(before[0]) + 1  # type: ignore[arg-type]
    assert record.run_id in {row[0] for row in after[0]}  # type: ignore[union-attr]

    for path in (tmp_path / "manifest-cache").iterdir():
        path.write_bytes(b"not arrow")
    # A fresh process over the damaged directory: decodes again, answers the same, and repairs the files.
    assert answers_fresh(wh) == after
    assert answers_fresh(wh) == after


def answers_fresh(wh: Warehouse) -> list[object]:
    import evals.warehouse.manifests as manifests

    manifests._CACHES.clear()
    return answers(wh)


def test_prune_drops_only_what_nobody_read_lately(tmp_path: Path) -> None:
    import pyarrow as pa

    cache = ManifestCache(tmp_path)
    table = pa.table({"x": [1]})
    cache._store("rows-old", table)
    cache._store("rows-used", table)
    week_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=7)).timestamp()
    for name in ("rows-old.arrow", "rows-used.arrow"):
        os.utime(tmp_path / name, (week_ago, week_ago))
    assert cache._load("rows-used") == table  # a read marks it in use
    assert cache.prune(dt.timedelta(days=3)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows-used.arrow"]


def test_each_process_prunes_its_cache_once_at_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers that never run the analytics DAG's maintenance (the Results page) still drop stale entries."""
    from evals.settings import get_settings
    from evals.warehouse.manifests import manifest_cache

    stale, fresh = tmp_path / "files-1-old.arrow", tmp_path / "files-1-new.arrow"
    for path in (stale, fresh):
        path.write_bytes(b"x")
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).timestamp()
    os.utime(stale, (long_ago, long_ago))
    monkeypatch.setattr("evals.warehouse.manifests._CACHES", {})
    manifest_cache(get_settings(manifest_cache_dir=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name]
