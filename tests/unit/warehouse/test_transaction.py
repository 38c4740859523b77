"""Our transactions compute the staged metadata once per state and commit exactly what pyiceberg's own would: the
same rows, the same snapshot operations, a lost race refreshed and retried."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table
from pyiceberg.table.update import update_table_metadata

from evals.warehouse.transaction import writable

SCHEMA = pa.schema([pa.field("day", pa.int64(), nullable=False), pa.field("x", pa.int64())])
PROPERTIES = {"commit.retry.num-retries": "3", "commit.retry.min-wait-ms": "10"}


def _catalog(tmp_path: Path, name: str) -> SqlCatalog:
    catalog = SqlCatalog(name, uri=f"sqlite:///{tmp_path}/{name}.db", warehouse=f"file://{tmp_path}/{name}")
    catalog.create_namespace("ns")
    catalog.create_table("ns.t", schema=SCHEMA, properties=PROPERTIES)
    return catalog


def _rows(day: int, *xs: int) -> pa.Table:
    return pa.table({"day": [day] * len(xs), "x": list(xs)}, schema=SCHEMA)


def _history(table: Table) -> None:
    """A few snapshots of appends and overwrites (one partition-like ``day`` each)."""
    for day in range(4):
        table.append(_rows(day, day, day + 10))
    table.overwrite(_rows(1, 7), overwrite_filter=EqualTo("day", 1))
    table.delete(delete_filter=EqualTo("day", 2))


def _contents(table: Table) -> list[tuple[int, int]]:
    return sorted(zip(*table.scan().to_arrow().to_pydict().values(), strict=True))


def test_the_same_writes_leave_the_same_rows_and_snapshots_as_pyicebergs_own_transaction(tmp_path: Path) -> None:
    ours = writable(_catalog(tmp_path, "ours").load_table("ns.t"))
    theirs = _catalog(tmp_path, "theirs").load_table("ns.t")
    _history(ours)
    _history(theirs)

    assert _contents(ours) == _contents(theirs) == [(0, 0), (0, 10), (1, 7), (3, 3), (3, 13)]

    def operations(table: Table) -> list[str | None]:
        return [s.summary.operation.value if s.summary else None for s in table.snapshots()]

    assert operations(ours) == operations(theirs)
    assert len(ours.snapshots()) >= 6


def test_staged_metadata_is_computed_once_per_state_and_equals_pyicebergs(tmp_path: Path) -> None:
    table = writable(_catalog(tmp_path, "t").load_table("ns.t"))
    _history(table)
    tx = table.transaction()

    first = tx.table_metadata
    assert tx.table_metadata is first  # no second replay and deep copy
    assert first == update_table_metadata(table.metadata, ())

    tx.set_properties({"owner": "evals"})  # staging rebinds the updates: the next read sees it
    staged = tx.table_metadata
    assert staged is not first
    assert staged.properties["owner"] == "evals"
    expected = update_table_metadata(table.metadata, tx._updates)
    assert staged.model_copy(update={"last_updated_ms": 0}) == expected.model_copy(update={"last_updated_ms": 0})
    tx.commit_transaction()
    assert table.refresh().properties["owner"] == "evals"


def test_a_writer_that_lost_a_race_retries_on_the_new_metadata(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "race")
    first, stale = writable(catalog.load_table("ns.t")), writable(catalog.load_table("ns.t"))
    first.append(_rows(0, 1))

    stale.overwrite(_rows(1, 2), overwrite_filter=EqualTo("day", 1))  # refreshes, then commits on top of first's

    assert _contents(first.refresh()) == [(0, 1), (1, 2)]
    assert type(stale.refresh()) is type(first)  # refresh keeps the caching class


@pytest.mark.parametrize("wrap_twice", [False, True])
def test_writable_shares_the_tables_state(tmp_path: Path, wrap_twice: bool) -> None:
    plain = _catalog(tmp_path, "share").load_table("ns.t")
    table = writable(writable(plain) if wrap_twice else plain)
    assert table.metadata is plain.metadata and table.io is plain.io and table.name() == plain.name()
    assert writable(table) is table
