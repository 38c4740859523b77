"""Every table pinned to one Iceberg snapshot (now, or as of a past moment) and the data files that make it up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from evals.errors import ConfigError
from evals.schemas import PARTITION_COLUMN, TABLES, arrow_schema
from evals.warehouse.catalog import AREAS, EVOLVED_PROPERTY
from evals.warehouse.manifests import empty_listing, manifest_cache
from evals.warehouse.rows import as_schema, guarded_read, one_of
from evals.warehouse.storage import fs_path

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.manifest import ManifestFile
    from pyiceberg.table import Table

    from evals.warehouse.store import Warehouse


@dataclass(frozen=True)
class PinnedTable:
    """One table at one snapshot; ``snapshot_id`` None: the table did not exist or was empty then."""

    table: Table | None
    snapshot_id: int | None

    @property
    def evolved(self) -> bool:
        """Its schema grew since some data files were written (those files lack the new columns)."""
        return self.table is not None and self.table.properties.get(EVOLVED_PROPERTY) == "true"


class Snapshot:
    """Each table of both areas pinned at one moment: reads through it never see a later commit, and the files
    they open stay in place until snapshot expiry and orphan removal, after ``EVALS_SNAPSHOT_RETENTION_HOURS``.

    ``as_of`` (aware datetime): the snapshot that was current then, per table (Iceberg time travel).
    """

    def __init__(self, warehouse: Warehouse, as_of: dt.datetime | None = None) -> None:
        if as_of is not None and as_of.tzinfo is None:
            raise ConfigError(f"as_of {as_of.isoformat()} has no timezone; pass an aware datetime (UTC)")
        self.warehouse = warehouse
        self.as_of = as_of
        self.native = warehouse.location.scheme == "file"
        present = {area: self.warehouse.tables.present(area) for area in AREAS}
        self.pinned = {
            (area, table): self._pin(area, table) if table in present[area] else PinnedTable(None, None)
            for area in AREAS
            for table in TABLES
        }
        self.cache = manifest_cache(warehouse.settings)

    def _pin(self, area: str, table: str) -> PinnedTable:
        found = self.warehouse.tables.existing(table, area)
        if found is None:
            return PinnedTable(None, None)
        if self.as_of is None:
            current = found.current_snapshot()
            return PinnedTable(found, current.snapshot_id if current else None)
        then = found.snapshot_as_of_timestamp(int(self.as_of.timestamp() * 1000))
        if then is None and found.history():
            oldest = found.snapshot_by_id(found.history()[0].snapshot_id)
            # Sequence numbers count a table's commits from 1: a later one first means older snapshots expired.
            if oldest is not None and (oldest.sequence_number or 0) > 1:
                kept = dt.datetime.fromtimestamp(oldest.timestamp_ms / 1000, dt.UTC).isoformat(timespec="seconds")
                raise ConfigError(
                    f"{area} table {table} keeps snapshots from {kept} on (EVALS_SNAPSHOT_RETENTION_HOURS); "
                    f"cannot show it as of {self.as_of.isoformat()}"
                )
        return PinnedTable(found, then.snapshot_id if then else None)

    def live_files(self, area: str, table: str) -> pa.Table | None:
        """The snapshot's live data files (``file_path``, ``eval_date``, ``run_lo``, ``run_hi``), each manifest
        decoded once per machine (:mod:`evals.warehouse.manifests`); None when some manifest lists row-level
        deletes (written by another engine): then only :meth:`arrow` reads the table right."""
        import pyarrow as pa

        manifests = self._data_manifests(area, table)
        if manifests is None:
            return None
        if not manifests:
            return empty_listing()
        found = self.pinned[area, table].table
        assert found is not None  # it has manifests
        parts = [guarded_read(f"plan {table}", partial(self.cache.files, found, m)) for m in manifests]
        return pa.concat_tables(parts)

    def _data_manifests(self, area: str, table: str) -> list[ManifestFile] | None:
        """The pinned snapshot's manifests (none when the table was absent or empty then), or None when one lists
        row-level deletes."""
        from pyiceberg.manifest import ManifestContent

        pinned = self.pinned[area, table]
        snapshot = pinned.table.snapshot_by_id(pinned.snapshot_id) if pinned.table and pinned.snapshot_id else None
        if pinned.table is None or snapshot is None:
            return []
        manifests = guarded_read(f"plan {table}", partial(snapshot.manifests, pinned.table.io))
        if any(manifest.content != ManifestContent.DATA for manifest in manifests):
            return None
        return manifests

    def files(self, area: str, table: str, runs: Sequence[tuple[str, dt.date]] | None = None) -> list[str] | None:
        """Paths (filesystem paths, no scheme) of the data files that may hold rows of ``runs`` (run_id,
        eval_date) — all of them when ``runs`` is None — or None when only :meth:`arrow` reads the table right.

        A file may hold a run's rows when its partition is the run's eval_date and the run_id lies within the
        file's run_id bounds (absent bounds: it may). Callers still filter rows on run_id.
        """
        listing = self.live_files(area, table)
        if listing is None:
            return None
        if runs is not None:
            listing = listing.filter(_may_hold(listing, runs))
        return [fs_path(path) for path in listing.column("file_path").to_pylist()]

    def runs_rows(self, area: str) -> pa.Table | None:
        """Every row of ``area``'s ``runs`` table at the snapshot, the rows of each manifest's files read once per
        machine; None when only :meth:`arrow` reads it right (row-level deletes)."""
        import pyarrow as pa

        manifests = self._data_manifests(area, "runs")
        if manifests is None:
            return None
        schema = arrow_schema("runs")
        if not manifests:
            return schema.empty_table()
        pinned = self.pinned[area, "runs"]
        found = pinned.table
        assert found is not None  # it has manifests
        evolved = pinned.evolved

        def read(paths: list[str]) -> pa.Table:
            local = [fs_path(path) for path in paths]
            if not local:  # a manifest that only records deletions
                return schema.empty_table()
            if self.native:  # DuckDB's multi-threaded reader: a few times faster than pyarrow's on many small files
                import duckdb

                with duckdb.connect() as con:
                    con.execute("set variable files = ?", [local])
                    by_name = "true" if evolved else "false"
                    sql = f"select * from read_parquet(getvariable('files'), union_by_name = {by_name})"
                    rows = con.sql(sql).to_arrow_table()
            else:
                rows = self.dataset("runs", local).to_table()
            # One chunk: per-file (or per-vector) chunks slow every later cast and scan.
            return as_schema("runs", rows).combine_chunks()

        parts = []
        for manifest in manifests:
            files = guarded_read("plan runs", partial(self.cache.files, found, manifest))
            rows = guarded_read("read runs", partial(self.cache.rows, manifest.manifest_path, files, read))
            parts.append(rows if rows.schema.equals(schema) else as_schema("runs", rows))
        return pa.concat_tables(parts)

    def arrow(self, area: str, table: str, runs: Sequence[tuple[str, dt.date]] | None = None) -> pa.Table:
        """The rows (of ``runs``, or all) through pyiceberg's own reader, which applies row-level deletes, as
        ``table``'s Arrow schema."""
        pinned = self.pinned[area, table]
        if pinned.table is None or pinned.snapshot_id is None:
            return arrow_schema(table).empty_table()
        scan = pinned.table.scan(snapshot_id=pinned.snapshot_id)
        if runs is not None:
            scan = scan.filter(runs_filter(list(runs)))
        return as_schema(table, guarded_read(f"read {table}", scan.to_arrow))

    def dataset(self, table: str, paths: list[str]) -> pads.Dataset:
        """A pyarrow dataset over these files of ``table`` (missing columns of older files read as null)."""
        import pyarrow.dataset as pads

        schema = arrow_schema(table)
        if not paths:
            return pads.dataset(schema.empty_table())
        return pads.dataset(paths, schema=schema, format="parquet", filesystem=self.warehouse.fs)


def runs_filter(runs: list[tuple[str, dt.date]]) -> BooleanExpression:
    """Rows of these (run_id, eval_date) runs, for file planning: partitions by date, files by run_id bounds."""
    from pyiceberg.expressions import AlwaysFalse, And

    if not runs:
        return AlwaysFalse()
    return And(one_of(PARTITION_COLUMN, (d.isoformat() for _, d in runs)), one_of("run_id", (r for r, _ in runs)))


def _may_hold(listing: pa.Table, runs: Sequence[tuple[str, dt.date]]) -> pa.Array:
    """Mask over ``listing``: files whose partition and run_id bounds admit one of ``runs``."""
    import pyarrow as pa

    by_date: dict[dt.date, list[str]] = {}
    for run_id, eval_date in runs:
        by_date.setdefault(eval_date, []).append(run_id)
    mask = []
    for eval_date, low, high in zip(
        listing.column("eval_date").to_pylist(),
        listing.column("run_lo").to_pylist(),
        listing.column("run_hi").to_pylist(),
        strict=True,
    ):
        candidates = by_date.get(eval_date) if eval_date is not None else [r for r, _ in runs]
        mask.append(
            bool(candidates)
            and any((low is None or low <= run) and (high is None or run <= high) for run in candidates or ())
        )
    return pa.array(mask, pa.bool_())
