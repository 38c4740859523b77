"""Every table pinned to one Iceberg snapshot (now, or as of a past moment) and the data files that make it up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError
from evals.schemas import PARTITION_COLUMN, TABLES, arrow_schema
from evals.warehouse.catalog import AREAS, EVOLVED_PROPERTY
from evals.warehouse.storage import fs_path
from evals.warehouse.store import as_schema, guarded_read, one_of

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from pyiceberg.expressions import BooleanExpression
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
        self.pinned = {(area, table): self._pin(area, table) for area in AREAS for table in TABLES}

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

    def tasks(self, area: str, table: str, row_filter: BooleanExpression | None = None) -> list[Any]:
        """The snapshot's file scan tasks of ``table`` (only files that may hold rows matching ``row_filter``)."""
        pinned = self.pinned[area, table]
        if pinned.table is None or pinned.snapshot_id is None:
            return []
        scan = pinned.table.scan(snapshot_id=pinned.snapshot_id)
        if row_filter is not None:
            scan = scan.filter(row_filter)
        return list(guarded_read(f"plan {table}", scan.plan_files))

    def files(self, area: str, table: str, row_filter: BooleanExpression | None = None) -> list[str] | None:
        """Paths of the data files (filesystem paths, no scheme), or None when some file has row-level deletes
        (written by another engine): then only :meth:`arrow` reads it right."""
        if row_filter is None:
            return self._all_files(area, table)
        tasks = self.tasks(area, table, row_filter)
        if any(task.delete_files for task in tasks):
            return None
        return [fs_path(task.file.file_path) for task in tasks]

    def _all_files(self, area: str, table: str) -> list[str] | None:
        """Every live data file of the snapshot, straight from its manifests: without a filter there is nothing
        for the scan planner's per-file evaluation to decide, and it is most of the cost of opening a table."""
        from pyiceberg.manifest import ManifestContent

        pinned = self.pinned[area, table]
        if pinned.table is None or pinned.snapshot_id is None:
            return []
        snapshot = pinned.table.snapshot_by_id(pinned.snapshot_id)
        if snapshot is None:
            return []
        io = pinned.table.io
        paths: list[str] = []
        for manifest in guarded_read(f"plan {table}", partial(snapshot.manifests, io)):
            if manifest.content != ManifestContent.DATA:
                return None
            entries = guarded_read(f"plan {table}", partial(manifest.fetch_manifest_entry, io, discard_deleted=True))
            paths.extend(fs_path(entry.data_file.file_path) for entry in entries)
        return paths

    def arrow(self, area: str, table: str, row_filter: BooleanExpression | None = None) -> pa.Table:
        """The rows through pyiceberg's own reader (applies delete files), as ``table``'s Arrow schema."""
        pinned = self.pinned[area, table]
        if pinned.table is None or pinned.snapshot_id is None:
            return arrow_schema(table).empty_table()
        scan = pinned.table.scan(snapshot_id=pinned.snapshot_id)
        if row_filter is not None:
            scan = scan.filter(row_filter)
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
    return And(
one_of(PARTITION_COLUMN, (d.isoformat() for _, d in runs)), one_of("run_id", (r for r, _ in runs))
    )
