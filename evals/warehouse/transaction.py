"""A table whose transactions compute their staged metadata once per state, not once per read (pyiceberg 0.12).

pyiceberg 0.12's ``Transaction.table_metadata`` replays the staged updates and deep-copies the whole table metadata
(every retained snapshot and its summary) on each read, and one overwrite reads it about 31 times: with a few
nights of snapshots retained that was 62 % of a publish (``bench/iceberg_overwrite.py`` measures it beside
pyiceberg's own transaction). The metadata models are frozen, so a copy protects nothing. The cache is the one
upstream approved (apache/iceberg-python#3302, carried on as #3784; not in a release this lock can install): keyed
on the identity of the table's metadata and of the staged-updates tuple, both replaced, never mutated, when they
change (a staged update rebinds ``_updates``; a refresh after a lost race rebinds ``Table.metadata``).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyiceberg.table import Table


def writable(table: Table) -> Table:
    """``table`` (same catalog, metadata, file IO) whose ``transaction()`` (hence ``overwrite``, ``delete``, ...)
    caches its staged metadata; ``refresh()`` keeps the class."""
    cls = _caching_table_class()
    if isinstance(table, cls):
        return table
    return cls(table._identifier, table.metadata, table.metadata_location, table.io, table.catalog, table.config)


@cache
def _caching_table_class() -> type[Table]:
    from pyiceberg.table import Table, Transaction
    from pyiceberg.table.update import update_table_metadata

    class CachingTransaction(Transaction):
        _memo: tuple[Any, Any, Any] | None = None

        @property
        def table_metadata(self) -> Any:
            base, updates = self._table.metadata, self._updates
            memo = self._memo
            if memo is not None and memo[0] is base and memo[1] is updates:
                return memo[2]
            metadata = update_table_metadata(base, updates)
            self._memo = (base, updates, metadata)
            return metadata

    class CachingTable(Table):
        def transaction(self) -> Transaction:
            return CachingTransaction(self)

    return CachingTable
