"""Table maintenance: expire old snapshots, then delete files that no remaining snapshot references.

Both wait ``EVALS_SNAPSHOT_RETENTION_HOURS``: a reader pinned to a snapshot (a DuckDB connection, a Trino query,
``--as-of`` time travel) keeps working that long, and a file an in-flight commit has written but not yet committed
is never taken for an orphan. pyiceberg 0.12 expires snapshot entries only; the files are ours to delete.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evals.schemas import TABLES
from evals.warehouse.catalog import AREAS
from evals.warehouse.manifests import ManifestCache, manifest_cache
from evals.warehouse.storage import fs_path

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from evals.warehouse.store import Warehouse

log = logging.getLogger(__name__)


@dataclass
class MaintenanceResult:
    table: str
    area: str
    snapshots_expired: int = 0
    files_deleted: int = 0


def maintain(
    warehouse: Warehouse, *, now: dt.datetime | None = None, retention: dt.timedelta | None = None
) -> list[MaintenanceResult]:
    """Expire snapshots older than the retention period and remove orphaned files, for every table.

    ``retention`` defaults to ``EVALS_SNAPSHOT_RETENTION_HOURS``; a simulation whose nights last seconds
    (``bench/warehouse_year.py``) passes its own, so snapshots, orphans and cache entries share one clock.
    """
    now = now or dt.datetime.now(dt.UTC)
    if retention is None:
        retention = dt.timedelta(hours=warehouse.settings.snapshot_retention_hours)
    cutoff = now - retention
    cache = manifest_cache(warehouse.settings)
    results = []
    for area in AREAS:
        for name in TABLES:
            table = warehouse.tables.existing(name, area)
            if table is None:
                continue
            result = MaintenanceResult(name, area)
            result.snapshots_expired = expire_snapshots(table, cutoff)
            result.files_deleted = remove_orphan_files(warehouse, table.refresh(), cutoff, cache)
            if result.snapshots_expired or result.files_deleted:
                log.info(
                    "%s.%s: %d snapshot(s) expired, %d orphaned file(s) deleted",
                    area,
                    name,
                    result.snapshots_expired,
                    result.files_deleted,
                )
            results.append(result)
    pruned = cache.prune(retention, now=now)
    if pruned:
        log.info("%d decoded manifest(s) unused for %s dropped from the manifest cache", pruned, retention)
    return results


def expire_snapshots(table: Table, older_than: dt.datetime) -> int:
    """Drop snapshots committed before ``older_than`` (the current one always stays); returns how many."""
    current = table.current_snapshot()
    old = [
        s.snapshot_id
        for s in table.snapshots()
        if s.timestamp_ms < older_than.timestamp() * 1000 and (current is None or s.snapshot_id != current.snapshot_id)
    ]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)


def referenced_files(table: Table, cache: ManifestCache | None = None) -> set[str]:
    """Every file some snapshot of ``table`` (or its metadata history) still needs, as filesystem paths."""
    from pyiceberg.manifest import ManifestContent

    cache = cache or ManifestCache(None)
    paths = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    seen_manifests: set[str] = set()
    for snapshot in table.snapshots():
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            paths.add(manifest.manifest_path)
            if manifest.content == ManifestContent.DATA:
                paths.update(cache.files(table, manifest).column("file_path").to_pylist())
            else:  # delete files (another engine's row-level deletes) are referenced too
                paths.update(
                    e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
                )
    return {fs_path(path) for path in paths}


def remove_orphan_files(
    warehouse: Warehouse, table: Table, older_than: dt.datetime, cache: ManifestCache | None = None
) -> int:
    """Delete files under the table's location that nothing references and that are older than ``older_than``."""
    from pyarrow import fs as pafs

    keep = referenced_files(table, cache)
    selector = pafs.FileSelector(fs_path(table.location()), recursive=True, allow_not_found=True)
    deleted = 0
    for info in warehouse.fs.get_file_info(selector):
        if info.type != pafs.FileType.File or info.path in keep:
            continue
        mtime = info.mtime
        if mtime is None or mtime.replace(tzinfo=mtime.tzinfo or dt.UTC) >= older_than:
            continue
        try:
            warehouse.fs.delete_file(info.path)
            deleted += 1
        except FileNotFoundError:
            pass
    return deleted
