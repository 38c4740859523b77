"""Lost commit races are counted and named: a writer holding a stale table loses to another, pyiceberg retries it,
and the warehouse says which table (how ``bench/fleet_night.py`` counts contention from the task logs)."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from evals.warehouse import Warehouse
from evals.warehouse.catalog import LOST_RACES


def _two_writers(tmp_path: Path) -> tuple[Table, Table]:
    catalog = SqlCatalog("races", uri=f"sqlite:///{tmp_path}/cat.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("ns")
    catalog.create_table("ns.t", schema=pa.schema([("x", pa.int64())]))
    # Two handles on the same table, as two worker processes hold it: the first commit makes the second stale.
    return catalog.load_table("ns.t"), catalog.load_table("ns.t")


def test_a_commit_that_lost_a_race_is_retried_counted_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path}/warehouse")
    first, stale = _two_writers(tmp_path)
    rows = pa.table({"x": pa.array([1, 2], pa.int64())})
    first.append(rows)
    before = LOST_RACES.count
    caplog.set_level(logging.INFO, logger="evals.warehouse.store")

    Warehouse.from_settings().committing("commit t of run r1", lambda: stale.append(rows))

    assert LOST_RACES.count - before == 1  # pyiceberg's own warning, counted
    assert any(
        r.name == "evals.warehouse.store" and r.getMessage().startswith("commit t of run r1: lost 1 race(s)")
        for r in caplog.records
    )
    assert first.refresh().scan().to_arrow().num_rows == 4  # both appends landed


def test_an_uncontended_commit_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path}/warehouse")
    first, _ = _two_writers(tmp_path)
    caplog.set_level(logging.INFO, logger="evals.warehouse.store")
    Warehouse.from_settings().committing("commit t of run r1", lambda: first.append(pa.table({"x": [1]})))
    assert not [r for r in caplog.records if "race" in r.getMessage()]


def test_a_validated_conflict_is_planned_again_and_its_result_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyiceberg.exceptions import ValidationException

    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path}/warehouse")
    calls: list[int] = []

    def conflicts_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ValidationException("a compaction rewrote the partition")
        return "committed"

    assert Warehouse.from_settings().committing("commit t of run r1", conflicts_once) == "committed"
    assert len(calls) == 2
