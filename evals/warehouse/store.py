"""The Parquet warehouse: idempotent, commit-last writes of runs; quarantine; reads of committed data."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evals.errors import RunNotFound, SchemaViolation, TerminalError
from evals.schemas import PARTITION_COLUMN, RUN_STATUSES, TABLES, Frame, arrow_schema, conform
from evals.warehouse import keys
from evals.warehouse.approval import Approval, require_approval
from evals.warehouse.record import RunRecord
from evals.warehouse.storage import Location, Storage, make_filesystem, parse_uri

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

    from evals.settings import Settings

log = logging.getLogger(__name__)

DATA_TABLES = tuple(t for t in TABLES if t != "runs")
DERIVED_TABLES = ("comparisons",)  # computed from published runs, added to them later by write_table
_STATUS_RANK = {status: rank for rank, status in enumerate(RUN_STATUSES)}


@dataclass
class TableFiles:
    """The files that make up one table in one area: per-run files and the newest compacted file per partition.

    ``per_run_ids[i]`` is the run id of ``per_run[i]``.
    """

    per_run: list[str] = field(default_factory=list)
    compacted: list[str] = field(default_factory=list)
    per_run_ids: list[str] = field(default_factory=list)


class Warehouse:
    """Tables under one root URI (file:// or s3://), laid out as ``<table>/eval_date=YYYY-MM-DD/<run_id>.parquet``.

    A run becomes visible only when its ``runs`` row (status ``published``) is written, which happens after all
    of its data files: a crash in between leaves nothing visible and a retry rewrites the same keys.
    """

    def __init__(self, uri: str, settings: Settings | None = None) -> None:
        from evals.settings import get_settings

        self.settings = settings or get_settings()
        self.location: Location = parse_uri(uri)
        self.storage = Storage(self.location, make_filesystem(self.location, self.settings))

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Warehouse:
        from evals.settings import get_settings

        settings = settings or get_settings()
        return cls(settings.warehouse, settings)

    @property
    def uri(self) -> str:
        return self.location.uri

    @property
    def fs(self) -> Any:
        return self.storage.fs

    # ------------------------------------------------------------------ writing

    def write_run(
        self,
        record: RunRecord,
        tables: Mapping[str, Frame],
        *,
        status: str = "published",
        approval: Approval | None = None,
    ) -> RunRecord:
        """Write a run's data files, then its ``runs`` row. Idempotent: the same run twice leaves one copy.

        ``status="quarantined"`` writes everything under ``_quarantine/``, which published views never read.
        Every frame is checked against its schema before anything is written. A published write needs the
        validation gate's ``approval`` for exactly these rows (:func:`evals.validation.validate_and_write`).
        """
        if status not in ("published", "quarantined"):
            raise TerminalError(f"write_run writes published or quarantined runs, not {status!r}")
        unknown = set(tables) - set(DATA_TABLES)
        if unknown:
            raise SchemaViolation(sorted(unknown)[0], "-", f"not a data table; data tables: {', '.join(DATA_TABLES)}")
        conformed = {name: conform_run_table(name, frame, record) for name, frame in tables.items()}
        if status == "published":
            require_approval(approval, record, conformed)
        record = record.replace(status=status, row_counts={name: t.num_rows for name, t in conformed.items()})
        runs_row = conform("runs", [record.to_row()])
        quarantine = status == "quarantined"

        if not quarantine:
            # Uncommit first: while the data files are being replaced, an earlier published copy of this run
            # must not show a mix of old and new files. A crash from here on leaves the run `failed` (visible as
            # such, counted as an attempt) until the retry commits it again.
            in_progress = record.replace(
                status="failed", row_counts={}, error=f"interrupted while publishing (started {_now_iso()})"
            )
            self.storage.write_parquet(
                keys.run_file("runs", record.eval_date, record.run_id),
                conform("runs", [in_progress.to_row()]).drop_columns([PARTITION_COLUMN]),
            )
        for name, table in conformed.items():
            self.storage.write_parquet(
                keys.run_file(name, record.eval_date, record.run_id, quarantine=quarantine),
                table.drop_columns([PARTITION_COLUMN]),
            )
        # A rerun that produced fewer tables must not leave an earlier attempt's rows behind, nor let a compacted
        # copy of them show through: where the partition is compacted, an empty per-run file overrides it.
        for name in set(DATA_TABLES) - set(conformed):
            relative = keys.run_file(name, record.eval_date, record.run_id, quarantine=quarantine)
            if not quarantine and self._has_compacted(name, record.eval_date):
                self.storage.write_parquet(relative, arrow_schema(name, with_partition=False).empty_table())
            else:
                self.storage.delete(relative)
        self.storage.write_parquet(
            keys.run_file("runs", record.eval_date, record.run_id, quarantine=quarantine),
            runs_row.drop_columns([PARTITION_COLUMN]),
        )
        if not quarantine:
            self._drop_quarantined_copy(record)
        log.info(
            "%s run %s (%s@%s) to %s: %s",
            status,
            record.run_id,
            record.model_id,
            record.revision[:12],
            self.uri,
            record.row_counts,
        )
        return record

    def write_table(self, record: RunRecord, table: str, frame: Frame) -> int:
        """Add or replace a derived table (``comparisons``) of an already-published run; returns the row count.

        The run is committed already, so the file is visible as soon as it lands; a rerun overwrites the same
        key. The run's other files and its ``runs`` row are left alone (a re-publication drops this file again).
        """
        if table not in DERIVED_TABLES:
            raise SchemaViolation(table, "-", f"only derived tables are added after publication: {DERIVED_TABLES}")
        existing = self.find_run(record.run_id, area="published", eval_date=record.eval_date)
        if existing is None or existing.status != "published":
            raise RunNotFound(f"no published run {record.run_id} in {self.uri}")
        conformed = conform_run_table(table, frame, record)
        self.storage.write_parquet(
            keys.run_file(table, record.eval_date, record.run_id), conformed.drop_columns([PARTITION_COLUMN])
        )
        return conformed.num_rows

    def _has_compacted(self, table: str, eval_date: dt.date) -> bool:
        return any(
            keys.compacted_generation(info.base_name) is not None
            for info in self.storage.list_files(keys.partition_dir(table, eval_date))
        )

    def record_failure(self, record: RunRecord, error: str) -> RunRecord:
        """Record a run that failed (status ``failed``), without hiding an earlier published result."""
        existing = self.find_run(record.run_id, eval_date=record.eval_date)
        if existing is not None and existing.status == "published":
            log.warning(
                "run %s failed on a rerun but stays published from an earlier attempt: %s", record.run_id, error
            )
            return existing
        failed = record.replace(status="failed", error=error[:4000], row_counts={})
        self.storage.write_parquet(
            keys.run_file("runs", failed.eval_date, failed.run_id),
            conform("runs", [failed.to_row()]).drop_columns([PARTITION_COLUMN]),
        )
        return failed

    def _drop_quarantined_copy(self, record: RunRecord) -> None:
        # runs row first: a quarantined run without its runs row is invisible everywhere.
        self.storage.delete(keys.run_file("runs", record.eval_date, record.run_id, quarantine=True))
        for name in DATA_TABLES:
            self.storage.delete(keys.run_file(name, record.eval_date, record.run_id, quarantine=True))

    # ------------------------------------------------------------------ staging

    def stage(self, run_id: str, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, str]:
        """Keep a run's raw rows between the evaluate and publish tasks (``_staging/<run_id>/``).

        Rows are kept as JSON exactly as produced — NaN, inf and wrong types included — so the validation gate
        sees what the evaluation really returned, and a publish retry never re-runs the GPU work.
        """
        import json

        staged = {}
        for name, rows in tables.items():
            relative = f"{keys.STAGING_PREFIX}/{run_id}/{name}.json"
            self.storage.write_bytes(relative, json.dumps(list(rows), default=str).encode())
            staged[name] = relative
        return staged

    def read_staged(self, staged: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
        import json

        return {name: json.loads(self.storage.read_bytes(relative)) for name, relative in staged.items()}

    def clear_staged(self, staged: Mapping[str, str]) -> None:
        for relative in staged.values():
            self.storage.delete(relative)

    def sweep_staging(self, older_than: dt.timedelta) -> int:
        """Delete staged rows older than ``older_than``: left by runs that died between evaluate and publish."""
        cutoff = dt.datetime.now(dt.UTC) - older_than
        swept = 0
        for info in self.storage.list_files(keys.STAGING_PREFIX):
            mtime = info.mtime
            if mtime is not None and mtime.replace(tzinfo=mtime.tzinfo or dt.UTC) < cutoff:
                swept += self.storage.delete(info.path.removeprefix(self.storage.path("")).lstrip("/"))
        return swept

    # ------------------------------------------------------------------ reading

    def table_files(self, table: str, *, area: str = "published") -> TableFiles:
        """List a table's files: per-run files, and the newest compacted generation of each partition."""
        prefix = f"{keys.QUARANTINE_PREFIX}/{table}" if area == "quarantine" else table
        files = TableFiles()
        newest: dict[str, tuple[int, str]] = {}
        for info in self.storage.list_files(prefix):
            if not info.base_name.endswith(".parquet"):
                continue
            partition = info.path.rsplit("/", 1)[0]
            generation = keys.compacted_generation(info.base_name)
            if generation is None:
                files.per_run.append(info.path)
                files.per_run_ids.append(info.base_name[: -len(".parquet")])
            elif partition not in newest or generation > newest[partition][0]:
                newest[partition] = (generation, info.path)
        files.compacted = sorted(path for _, path in newest.values())
        order = sorted(range(len(files.per_run)), key=files.per_run.__getitem__)  # keep ids aligned with paths
        files.per_run = [files.per_run[i] for i in order]
        files.per_run_ids = [files.per_run_ids[i] for i in order]
        return files

    def datasets(self, table: str, *, area: str = "published") -> tuple[pads.Dataset, pads.Dataset, list[str]]:
        """(per-run dataset, compacted dataset, run ids that have a per-run file) for ``table``.

        A per-run file always wins over a compacted copy of the same run: readers drop compacted rows whose
        run_id is in the third element, so there is no moment during compaction with rows missing or doubled.
        """
        files = self.table_files(table, area=area)
        return (
            self.dataset(table, files.per_run, area=area),
            self.dataset(table, files.compacted, area=area),
            files.per_run_ids,
        )

    def dataset(self, table: str, paths: Sequence[str], *, area: str = "published") -> pads.Dataset:
        """A pyarrow dataset of these files of ``table`` (full paths, as listed), eval_date from the path."""
        import pyarrow as pa
        import pyarrow.dataset as pads

        schema = arrow_schema(table)
        if not paths:
            return pads.dataset(schema.empty_table())
        base = self.storage.path(f"{keys.QUARANTINE_PREFIX}/{table}" if area == "quarantine" else table)
        return pads.dataset(
            list(paths),
            schema=schema,
            format="parquet",
            filesystem=self.fs,
            partitioning=pads.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive"),
            partition_base_dir=base,
        )

    def read_table(self, table: str, *, area: str = "published", filter: Any = None) -> pa.Table:
        """All rows of ``table`` in ``area`` (uncommitted runs included; use the DuckDB views for committed)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        per_run, compacted, overridden = self.datasets(table, area=area)
        parts = [per_run.to_table(filter=filter)]
        compacted_rows = compacted.to_table(filter=filter)
        if overridden and compacted_rows.num_rows:
            compacted_rows = compacted_rows.filter(pc.invert(pc.is_in(compacted_rows["run_id"], pa.array(overridden))))
        parts.append(compacted_rows)
        return pa.concat_tables(parts)

    def run_records(
        self,
        *,
        statuses: Iterable[str] = ("published", "quarantined", "failed"),
        filter: Any = None,
        areas: Iterable[str] = ("published", "quarantine"),
    ) -> list[RunRecord]:
        """Run records matching ``filter`` (a pyarrow expression), one per run_id: published beats quarantined
        beats failed."""
        wanted = set(statuses)
        best: dict[str, dict[str, Any]] = {}
        for area in areas:
            for row in self.read_table("runs", area=area, filter=filter).to_pylist():
                current = best.get(row["run_id"])
                if current is None or _STATUS_RANK[row["status"]] < _STATUS_RANK[current["status"]]:
                    best[row["run_id"]] = row
        return sorted(
            (RunRecord.from_row(row) for row in best.values() if row["status"] in wanted),
            key=lambda r: (r.logical_date, r.run_id),
        )

    def find_run(self, run_id: str, *, area: str | None = None, eval_date: dt.date | None = None) -> RunRecord | None:
        """The run record of ``run_id`` in ``area`` (both areas when None), or None."""
        import pyarrow.dataset as pads

        expr = pads.field("run_id") == run_id
        if eval_date is not None:
            expr = expr & (pads.field(PARTITION_COLUMN) == eval_date)
        found = self.run_records(filter=expr, areas=("published", "quarantine") if area is None else (area,))
        return found[0] if found else None

    def read_run_table(self, table: str, record: RunRecord, *, area: str = "published") -> pa.Table | None:
        """One run's rows of one data table, or None when that run wrote no such table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        quarantine = area == "quarantine"
        relative = keys.run_file(table, record.eval_date, record.run_id, quarantine=quarantine)
        if not self.storage.exists(relative):
            if quarantine:
                return None
            rows = self.read_table(table, filter=_run_filter(record))
            return rows if rows.num_rows else None
        data = pq.read_table(
            self.storage.path(relative), filesystem=self.fs, schema=arrow_schema(table, with_partition=False)
        )
        return data.append_column(PARTITION_COLUMN, pa.array([record.eval_date] * data.num_rows, pa.date32()))


def _run_filter(record: RunRecord) -> Any:
    import pyarrow.dataset as pads

    return (pads.field("run_id") == record.run_id) & (pads.field(PARTITION_COLUMN) == record.eval_date)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def conform_run_table(name: str, frame: Frame, record: RunRecord) -> pa.Table:
    """``frame`` as ``name``'s Arrow table for this run: run_id/eval_date filled in, rows of another run refused."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = conform(name, _with_run_keys(frame, record))
    for column, expected in (("run_id", record.run_id), (PARTITION_COLUMN, record.eval_date)):
        if table.num_rows and not pc.all(pc.equal(table.column(column), pa.scalar(expected))).as_py():
            raise SchemaViolation(name, column, f"every row must belong to run {record.run_id} ({column}={expected})")
    return table


def _with_run_keys(frame: Frame, record: RunRecord) -> Frame:
    """Fill run_id and eval_date from the record where the frame leaves them out."""
    import pyarrow as pa

    keys_ = {"run_id": record.run_id, PARTITION_COLUMN: record.eval_date}
    if isinstance(frame, pa.Table):
        for column, value in keys_.items():
            if column not in frame.column_names:
                frame = frame.append_column(column, pa.array([value] * frame.num_rows))
        return frame
    if hasattr(frame, "columns") and hasattr(frame, "assign"):  # pandas
        return frame.assign(**{k: v for k, v in keys_.items() if k not in frame.columns})
    # A row that is not a mapping is left for conform() to refuse with a clear message.
    return [{**keys_, **row} if isinstance(row, Mapping) else row for row in frame]
