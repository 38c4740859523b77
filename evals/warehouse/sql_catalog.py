"""The SQL catalog (SQLite, PostgreSQL) with each table metadata file parsed once per process.

An Iceberg metadata file is written once and never changed: a new commit writes a new file and moves the
catalog's pointer. pyiceberg's ``SqlCatalog.load_table`` reads and parses the pointed-to file on every load, which
on a year of nightly commits (a few hundred snapshots kept per table) was the largest cost of opening the read
model once its manifests are cached: four tables parsed per open, ~6 ms each. Here a load still asks the
database where each table's metadata is now (so it always sees the latest commit), and parses a file only the
first time this process meets it; the metadata a commit of this process wrote is kept under its new location.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

# Only catalog._new_catalog imports this module, inside the function: a subclass needs its base at import.
from pyiceberg.catalog.sql import SqlCatalog  # noqa: TID253

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import IcebergTables
    from pyiceberg.table import CommitTableResponse, Table
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.update import TableRequirement, TableUpdate

# Metadata files kept parsed: two areas x eight tables, twice over (a publish and a read model in one process).
KEPT = 32


class ParsedMetadata:
    """Parsed table metadata by metadata-file location, the most recently used ``size`` kept (thread-safe:
    pyiceberg's ``TableMetadata`` is frozen, so tables of several threads can share one)."""

    def __init__(self, size: int = KEPT) -> None:
        self.size = size
        self.parsed = 0  # files parsed: what a cache hit saves
        self._by_location: OrderedDict[str, TableMetadata] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, location: str) -> TableMetadata | None:
        with self._lock:
            found = self._by_location.get(location)
            if found is not None:
                self._by_location.move_to_end(location)
            return found

    def put(self, location: str, metadata: TableMetadata) -> None:
        with self._lock:
            self._by_location[location] = metadata
            self._by_location.move_to_end(location)
            while len(self._by_location) > self.size:
                self._by_location.popitem(last=False)


class CachingSqlCatalog(SqlCatalog):
    """pyiceberg's SQL catalog whose table loads reuse metadata already parsed in this process."""

    def __init__(self, name: str, **properties: Any) -> None:
        super().__init__(name, **properties)
        self.metadata = ParsedMetadata()

    def _convert_orm_to_iceberg(self, orm_table: IcebergTables) -> Table:
        # pyiceberg's own conversion (it checks the row, then reads and parses the file) unless the file is known.
        location, namespace, name = orm_table.metadata_location, orm_table.table_namespace, orm_table.table_name
        metadata = self.metadata.get(location) if location else None
        if metadata is None or not location or not namespace or not name:
            table = super()._convert_orm_to_iceberg(orm_table)
            self.metadata.parsed += 1
            self.metadata.put(table.metadata_location, table.metadata)
            return table
        from pyiceberg.table import Table

        return Table(
            identifier=(*self.identifier_to_tuple(namespace), name),
            metadata=metadata,
            metadata_location=location,
            io=self._load_file_io(metadata.properties, location),
            catalog=self,
        )

    def commit_table(
        self, table: Table, requirements: tuple[TableRequirement, ...], updates: tuple[TableUpdate, ...]
    ) -> CommitTableResponse:
        response = super().commit_table(table, requirements, updates)
        self.metadata.put(response.metadata_location, response.metadata)
        return response
