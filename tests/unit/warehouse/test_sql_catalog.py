"""The SQL catalog parses each metadata file once per process, and never serves a table older than the catalog's
pointer: every load equals what pyiceberg's own ``SqlCatalog`` loads from the same database."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg import serializers
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from evals.warehouse.sql_catalog import CachingSqlCatalog, ParsedMetadata

SCHEMA = pa.schema([pa.field("day", pa.int64(), nullable=False), pa.field("x", pa.int64())])


def _props(tmp_path: Path) -> dict[str, str]:
    return {"uri": f"sqlite:///{tmp_path}/catalog.db", "warehouse": f"file://{tmp_path}/warehouse"}


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Locations of the metadata files parsed, by anyone (pyiceberg's own reader, counted from outside)."""
    seen: list[str] = []
    original = serializers.FromInputFile.table_metadata

    def counting(input_file, encoding="utf-8"):  # type: ignore[no-untyped-def]
        seen.append(input_file.location)
        return original(input_file, encoding)

    monkeypatch.setattr(serializers.FromInputFile, "table_metadata", staticmethod(counting))
    return seen


@pytest.fixture
def catalogs(tmp_path: Path) -> tuple[CachingSqlCatalog, SqlCatalog]:
    """Ours and pyiceberg's own over one database, with a table of three commits."""
    ours = CachingSqlCatalog("evals", **_props(tmp_path))
    ours.create_namespace("ns")
    table = ours.create_table("ns.t", schema=SCHEMA)
    for day in range(3):
        table.append(pa.table({"day": [day], "x": [day * 10]}, schema=SCHEMA))
    return ours, SqlCatalog("evals", **_props(tmp_path))


def _same(a: Table, b: Table) -> None:
    assert a.metadata_location == b.metadata_location
    assert a.metadata == b.metadata
    assert a.name() == b.name()
    assert a.scan().to_arrow().sort_by("day").equals(b.scan().to_arrow().sort_by("day"))


def test_a_table_loaded_again_is_not_parsed_again_and_equals_pyicebergs_load(
    catalogs: tuple[CachingSqlCatalog, SqlCatalog], parses: list[str]
) -> None:
    ours, theirs = catalogs
    ours.metadata = ParsedMetadata()  # forget what the commits above left
    first = ours.load_table("ns.t")
    again = ours.load_table("ns.t")
    assert parses == [first.metadata_location]
    _same(again, theirs.load_table("ns.t"))
    assert again.metadata is first.metadata and again is not first


def test_a_commit_elsewhere_is_seen_at_the_next_load(
    catalogs: tuple[CachingSqlCatalog, SqlCatalog], parses: list[str]
) -> None:
    ours, theirs = catalogs
    held = ours.load_table("ns.t")
    theirs.load_table("ns.t").append(pa.table({"day": [9], "x": [90]}, schema=SCHEMA))  # another process's commit
    reloaded = ours.load_table("ns.t")
    assert reloaded.metadata_location != held.metadata_location
    assert sorted(reloaded.scan().to_arrow().column("day").to_pylist()) == [0, 1, 2, 9]
    _same(reloaded, theirs.load_table("ns.t"))
    assert held.scan().to_arrow().num_rows == 3  # a table already held stays at its snapshot


def test_a_commit_of_this_process_needs_no_parse_at_the_next_load(
    catalogs: tuple[CachingSqlCatalog, SqlCatalog], parses: list[str]
) -> None:
    ours, theirs = catalogs
    table = ours.load_table("ns.t")
    parses.clear()
    table.append(pa.table({"day": [5], "x": [50]}, schema=SCHEMA))
    reloaded = ours.load_table("ns.t")
    assert parses == []
    _same(reloaded, theirs.load_table("ns.t"))  # the kept metadata is what the written file says


def test_only_the_most_recently_used_files_stay_parsed(catalogs: tuple[CachingSqlCatalog, SqlCatalog]) -> None:
    ours, _ = catalogs
    ours.metadata = ParsedMetadata(size=2)
    table = ours.load_table("ns.t")
    locations = [table.metadata_location]
    for day in (7, 8):
        table.append(pa.table({"day": [day], "x": [day]}, schema=SCHEMA))
        locations.append(table.metadata_location)
    assert ours.metadata.get(locations[0]) is None
    assert all(ours.metadata.get(location) is not None for location in locations[1:])
