"""What each Iceberg manifest lists, decoded once per machine and kept by the manifest's path.

A manifest never changes once written, and neither do the data files it lists: its live files (path, partition
date, run_id bounds) are the same in every snapshot that still lists it. Opening the warehouse used to decode every
manifest entry of every table in Python (pyiceberg builds a full ``DataFile`` with ~40 columns of metrics per
file) — 5 s at 3,000 uncompacted runs. Here a manifest is decoded once and the three fields we use (path,
partition, run_id bounds) are kept as an Arrow IPC file under the cache directory; a later connection reads that
instead, and only manifests written since (a night's commits, or a manifest merge) are decoded again.

The ``runs`` table's rows (the commit records every view filters on) are kept the same way, per manifest: the
rows of its live data files, so opening the warehouse does not open one Parquet file per run either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import ManifestFile
    from pyiceberg.table import Table

    from evals.settings import Settings

log = logging.getLogger(__name__)

# Bumped when what a cache file holds changes: older files are then ignored (and pruned by age).
FORMAT = 1
_MEMORY_ENTRIES = 512  # manifests kept decoded in this process (a Results page serves many connections)
_EPOCH = dt.date(1970, 1, 1)


class ManifestCache:
    """Decoded manifests, in memory (per process) and as Arrow IPC files in ``directory`` (per machine).

    ``directory`` None keeps them in memory only. Files are written to a temporary name and renamed, so
    concurrent processes (Airflow workers, the Results page) share the directory safely; a file that fails to read
    is decoded again and rewritten.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: OrderedDict[str, pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    def files(self, table: Table, manifest: ManifestFile) -> pa.Table:
        """The manifest's live data files: ``file_path``, ``eval_date`` (partition value), ``run_lo``/``run_hi``
        (run_id bounds; null when the manifest has none)."""
        return self._cached("files", manifest.manifest_path, lambda: _decode_files(table, table.io, manifest))

    def rows(self, manifest_path: str, files: pa.Table, read: Callable[[list[str]], pa.Table]) -> pa.Table:
        """The rows of a manifest's live data files (``files``, from :meth:`files`), read by ``read(paths)``."""
        return self._cached("rows", manifest_path, lambda: read(files.column("file_path").to_pylist()))

    def _cached(self, kind: str, manifest_path: str, decode: Callable[[], pa.Table]) -> pa.Table:
        key = f"{kind}-{FORMAT}-{hashlib.sha256(manifest_path.encode()).hexdigest()[:40]}"
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
                return found
        found = self._load(key)
        if found is None:
            found = decode()
            self._store(key, found)
        with self._lock:
            self._memory[key] = found
            while len(self._memory) > _MEMORY_ENTRIES:
                self._memory.popitem(last=False)
        return found

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.arrow"

    def _load(self, key: str) -> pa.Table | None:
        import pyarrow as pa

        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            with pa.memory_map(str(path)) as source:
                found = pa.ipc.open_file(source).read_all()
            os.utime(path)  # in use: :meth:`prune` drops only what no recent reader needed
            return found
        except (OSError, pa.ArrowInvalid) as exc:
            log.warning("manifest cache file %s unreadable (%s); decoding the manifest again", path, exc)
            return None

    def _store(self, key: str, value: pa.Table) -> None:
        import pyarrow as pa

        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_file(sink, value.schema) as writer:
                writer.write_table(value)
            os.replace(partial, path)
        except OSError as exc:  # a full or read-only disk costs speed, never an answer
            log.warning("cannot keep decoded manifest in %s: %s", path, exc)

    def prune(self, older_than: dt.timedelta, *, now: dt.datetime | None = None) -> int:
        """Delete cache files nobody read or wrote for ``older_than`` before ``now`` (default: now), e.g. manifests
        that merges and expiry replaced."""
        if self.directory is None or not self.directory.exists():
            return 0
        cutoff = (now or dt.datetime.now(dt.UTC)).timestamp() - older_than.total_seconds()
        removed = 0
        for path in self.directory.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _decode_files(table: Table, io: FileIO, manifest: ManifestFile) -> pa.Table:
    """``manifest``'s live entries: path, partition date, run_id bounds."""
    import pyarrow as pa
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import StringType

    from evals.schemas import PARTITION_COLUMN

    schema = table.schema()
    spec = table.specs()[manifest.partition_spec_id]
    date_position = next(
        (i for i, field in enumerate(spec.fields) if schema.find_column_name(field.source_id) == PARTITION_COLUMN), None
    )
    run_field = schema.find_field("run_id").field_id
    paths: list[str] = []
    dates: list[dt.date | None] = []
    lows: list[str | None] = []
    highs: list[str | None] = []
    for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
        data_file = entry.data_file
        paths.append(data_file.file_path)
        day = data_file.partition[date_position] if date_position is not None else None
        dates.append(_EPOCH + dt.timedelta(days=day) if isinstance(day, int) else day)
        low, high = (data_file.lower_bounds or {}).get(run_field), (data_file.upper_bounds or {}).get(run_field)
        lows.append(from_bytes(StringType(), low) if low is not None else None)
        highs.append(from_bytes(StringType(), high) if high is not None else None)
    return pa.Table.from_arrays(
        [pa.array(paths, pa.string()), pa.array(dates, pa.date32()), pa.array(lows), pa.array(highs)],
        schema=listing_schema(),
    )


def listing_schema() -> pa.Schema:
    """What :meth:`ManifestCache.files` returns per live data file."""
    import pyarrow as pa

    return pa.schema(
        [("file_path", pa.string()), ("eval_date", pa.date32()), ("run_lo", pa.string()), ("run_hi", pa.string())]
    )


def empty_listing() -> pa.Table:
    return listing_schema().empty_table()


_CACHES: dict[Path | None, ManifestCache] = {}
_CACHES_LOCK = threading.Lock()


def manifest_cache(settings: Settings) -> ManifestCache:
    """The process-wide cache for ``settings`` (files in ``EVALS_MANIFEST_CACHE_DIR``, by default
    ``<cache_dir>/iceberg-manifests``)."""
    directory = (settings.manifest_cache_dir or settings.cache_dir / "iceberg-manifests").resolve()
    with _CACHES_LOCK:
        if directory not in _CACHES:
            _CACHES[directory] = cache = ManifestCache(directory)
            # Once per process: a reader that never runs the analytics DAG's maintenance (the Results page, a
            # laptop running `evals query`) must not keep every manifest it ever saw.
            cache.prune(dt.timedelta(hours=max(settings.snapshot_retention_hours, 24)))
        return _CACHES[directory]
