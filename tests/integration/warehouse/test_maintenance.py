"""Maintenance with an explicit retention: snapshots, orphaned files and cache entries share one cutoff."""

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from factories import all_tables, publish_run, run_record

from evals.analysis.leaderboard import connect
from evals.warehouse import Warehouse
from evals.warehouse.maintenance import maintain
from evals.warehouse.manifests import ManifestCache

pytestmark = pytest.mark.integration


def data_files_on_disk(wh: Warehouse, table: str) -> set[Path]:
    iceberg = wh.tables.existing(table)
    assert iceberg is not None
    return {p for p in Path(iceberg.location().removeprefix("file://"), "data").rglob("*.parquet")}


@pytest.mark.parametrize("warehouse_uri", ["file"], indirect=True)
def test_retention_keeps_what_came_after_the_cutoff_and_drops_what_came_before(warehouse_uri: str) -> None:
    wh = Warehouse(warehouse_uri)
    first = run_record("org/model-a")
    publish_run(wh, first, all_tables(first, tasks={"arc_easy": 0.5}))
    before_cutoff = data_files_on_disk(wh, "accuracy")
    stale_entry = Path(os.environ["EVALS_MANIFEST_CACHE_DIR"], "files-1-stale.arrow")
    stale_entry.parent.mkdir(parents=True, exist_ok=True)
    stale_entry.write_bytes(b"x")
    time.sleep(0.05)  # snapshot timestamps are in ms, file times in ns: keep the two sides apart
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    # After the cutoff: the same run republished (its first files now unreferenced by the current snapshot)
    # and a second run.
    publish_run(wh, first, all_tables(first, tasks={"arc_easy": 0.7}))
    second = run_record("org/model-b")
    publish_run(wh, second, all_tables(second))
    fresh_entry = stale_entry.with_name("files-1-fresh.arrow")
    fresh_entry.write_bytes(b"x")
    accuracy = wh.tables.existing("accuracy")
    assert accuracy is not None
    cutoff_ms = cutoff.timestamp() * 1000
    young = {s.snapshot_id for s in accuracy.snapshots() if s.timestamp_ms >= cutoff_ms}
    old = {s.snapshot_id for s in accuracy.snapshots() if s.timestamp_ms < cutoff_ms}
    assert young and old
    answers = connect(wh).execute("select run_id, task, value from accuracy order by run_id, task").fetchall()

    assert sum(r.snapshots_expired for r in maintain(wh)) == 0  # the default retention (72 h) keeps everything
    done = maintain(wh, retention=dt.datetime.now(dt.UTC) - cutoff)

    kept = {s.snapshot_id for s in accuracy.refresh().snapshots()}
    assert kept == young  # every snapshot after the cutoff, none before (the current one is after it)
    assert {(r.area, r.table): r for r in done}["published", "accuracy"].snapshots_expired == len(old)
    assert data_files_on_disk(wh, "accuracy").isdisjoint(before_cutoff)  # the first publication's files are gone
    assert not stale_entry.exists() and fresh_entry.exists()
    assert connect(wh).execute("select run_id, task, value from accuracy order by run_id, task").fetchall() == answers


def test_prune_counts_age_from_the_given_now(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    entry = tmp_path / "rows-1-a.arrow"
    entry.write_bytes(b"x")
    day_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).timestamp()
    os.utime(entry, (day_ago, day_ago))
    assert cache.prune(dt.timedelta(days=3)) == 0  # one day old now
    assert cache.prune(dt.timedelta(days=3), now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)) == 0
    assert cache.prune(dt.timedelta(days=3), now=dt.datetime.now(dt.UTC) + dt.timedelta(days=3)) == 1
    assert not entry.exists()
