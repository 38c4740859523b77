"""The warehouse: runs published as Iceberg commits (data tables first, the ``runs`` row last), quarantine, reads."""

from __future__ import annotations

import datetime as dt
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from evals.conformance import Frame, conform
from evals.errors import RunNotFound, SchemaViolation, StorageUnavailable, TerminalError
from evals.schemas import (
    DATA_TABLES,
    DERIVED_TABLES,
    PARTITION_COLUMN,
    RUN_STATUSES,
    arrow_schema,
)
from evals.warehouse import keys
from evals.warehouse.approval import Approval, require_approval
from evals.warehouse.catalog import LOST_RACES, Tables, open_catalog, reaching_the_catalog
from evals.warehouse.record import RunRecord
from evals.warehouse.rows import as_schema, conform_run_table, equal, guarded_read, one_of, run_filter
from evals.warehouse.storage import Location, Storage, classify, make_filesystem, parse_uri

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.expressions import BooleanExpression

    from evals.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

_STATUS_RANK = {status: rank for rank, status in enumerate(RUN_STATUSES)}
_CONFLICT_ATTEMPTS = 5  # whole-operation retries after a validated conflict (e.g. a compaction of the partition)


class Warehouse:
    """Iceberg tables (one per table of ``evals.schemas``, partitioned by eval_date) under one root URI.

    A run's rows are replaced in each table by one atomic Iceberg commit (an overwrite filtered on run_id and
    eval_date: a retry rewrites, never duplicates). The ``runs`` row, status ``published``, is committed last:
    data rows count only when their run has one, so a crash between tables publishes nothing. Quarantined runs
    live in a second namespace with the same schemas. Non-table files (staged rows, reports, validation results)
    sit beside the tables under ``_staging/`` and ``_reports/``.
    """

    def __init__(self, uri: str, settings: Settings | None = None) -> None:
        from evals.settings import get_settings

        self.settings = settings or get_settings()
        self.location: Location = parse_uri(uri)
        self.storage = Storage(self.location, make_filesystem(self.location, self.settings))
        self._tables: Tables | None = None

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

    @property
    def tables(self) -> Tables:
        """The Iceberg tables (the catalog is opened on first use, not by the constructor)."""
        if self._tables is None:
            self._tables = Tables(open_catalog(self.location, self.settings), self.settings)
        return self._tables

    # ------------------------------------------------------------------ writing

    def write_run(
        self,
        record: RunRecord,
        tables: Mapping[str, Frame],
        *,
        status: str = "published",
        approval: Approval | None = None,
    ) -> RunRecord:
        """Commit a run's data tables, then its ``runs`` row. Idempotent: the same run twice leaves one copy.

        ``status="quarantined"`` writes to the quarantine namespace, which published views never read. Every
        frame is checked against its schema before anything is written. A published write needs the validation
        gate's ``approval`` for exactly these rows (:func:`evals.validation.validate_and_write`). A table the run
        does not write loses that run's rows from an earlier attempt.
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
        area = "published" if status == "published" else "quarantine"

        if area == "published":
            previous = self.find_run(record.run_id, area="published", eval_date=record.eval_date)
            if previous is not None and previous.status == "published":
                # A republication replaces tables one commit at a time: withdraw the commit record first, so no
                # reader sees old and new tables mixed, and a crash leaves the run unpublished until the retry.
                self._replace_rows("runs", area, record, conform("runs", [_republishing(record).to_row()]))
        for name in DATA_TABLES:
            self._replace_rows(name, area, record, conformed.get(name))
        self._replace_rows("runs", area, record, runs_row)
        if area == "published":
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
        """Add or replace a derived table (comparisons, change points) of a published run; returns the row count."""
        return sum(self.write_derived(table, {record.run_id: frame}, eval_dates=[record.eval_date]).values())

    def write_derived(
        self, table: str, frames: Mapping[str, Frame], *, eval_dates: Iterable[dt.date], skip_unpublished: bool = False
    ) -> dict[str, int]:
        """Add or replace a derived table's rows of several published runs (run id -> frame, on ``eval_dates``) in
        one commit: a night's comparisons are one snapshot, not one commit per run racing the others.

        A run that is not published (any more) fails the whole write, nothing written, or with
        ``skip_unpublished`` is left out. Returns the rows written per run."""
        from pyiceberg.expressions import And

        if table not in DERIVED_TABLES:
            raise SchemaViolation(table, "-", f"only derived tables are added after publication: {DERIVED_TABLES}")
        if not frames:
            return {}
        asked = And(one_of(PARTITION_COLUMN, [d.isoformat() for d in eval_dates]), one_of("run_id", frames))
        published = {r.run_id: r for r in self.run_records(statuses=("published",), row_filter=asked)}
        missing = sorted(set(frames) - set(published))
        if missing and not skip_unpublished:
            raise RunNotFound(f"no published run {', '.join(missing)} in {self.uri}")
        if missing:
            log.info("%s: left out runs no longer published: %s", table, ", ".join(missing))
        kept = [run_id for run_id in frames if run_id in published]
        if not kept:
            return {}
        import pyarrow as pa

        conformed = {run_id: conform_run_table(table, frames[run_id], published[run_id]) for run_id in kept}
        # Only the runs written: a run left out keeps its rows.
        kept_dates = {published[run_id].eval_date.isoformat() for run_id in kept}
        kept_rows = And(one_of(PARTITION_COLUMN, kept_dates), one_of("run_id", kept))
        what = f"commit {table} of run {kept[0]}" if len(kept) == 1 else f"commit {table} of {len(kept)} runs"
        self._replace_where(table, "published", kept_rows, pa.concat_tables(conformed.values()), what)
        return {run_id: rows.num_rows for run_id, rows in conformed.items()}

    def record_failure(self, record: RunRecord, error: str) -> RunRecord:
        """Record a run that failed (status ``failed``), without hiding an earlier published result."""
        existing = self.find_run(record.run_id, eval_date=record.eval_date)
        if existing is not None and existing.status == "published":
            log.warning(
                "run %s failed on a rerun but stays published from an earlier attempt: %s", record.run_id, error
            )
            return existing
        failed = record.replace(status="failed", error=error[:4000], row_counts={})
        self._replace_rows("runs", "published", failed, conform("runs", [failed.to_row()]))
        return failed

    def _drop_quarantined_copy(self, record: RunRecord) -> None:
        # runs row first: quarantined data without its runs row is invisible everywhere.
        for name in ("runs", *DATA_TABLES):
            if self.tables.existing(name, "quarantine") is not None:
                self._replace_rows(name, "quarantine", record, None)

    def _replace_rows(self, name: str, area: str, record: RunRecord, rows: pa.Table | None) -> None:
        """One atomic commit: ``record``'s rows of table ``name`` become ``rows`` (none when None or empty)."""
        self._replace_where(name, area, run_filter(record), rows, f"commit {name} of run {record.run_id}")

    def _replace_where(self, name: str, area: str, flt: BooleanExpression, rows: pa.Table | None, what: str) -> None:
        """One atomic commit: the rows of table ``name`` matching ``flt`` become ``rows`` (none when None/empty)."""

        def commit() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "Delete operation did not match any records"
                if rows is not None and rows.num_rows:
                    self.tables.load(name, area).overwrite(rows, overwrite_filter=flt)
                    return
                table = self.tables.existing(name, area)
                if table is not None and any(True for _ in table.scan(row_filter=flt).plan_files()):
                    table.delete(delete_filter=flt)  # else nothing of these runs is there: no empty commit

        self.committing(what, commit)

    def committing(self, what: str, fn: Callable[[], T]) -> T:
        """Run one commit, again from a fresh table state when it conflicted with a concurrent change to the same
        rows (pyiceberg retries plain races itself; a validated conflict, e.g. a compaction of the partition, needs
        the operation planned again); storage errors keep their retry semantics."""
        from pyiceberg.exceptions import CommitFailedException, ValidationException

        for attempt in range(_CONFLICT_ATTEMPTS):
            lost, started = LOST_RACES.count, time.monotonic()
            try:
                with reaching_the_catalog(what):
                    result = fn()
            except ValidationException as exc:
                if attempt == _CONFLICT_ATTEMPTS - 1:
                    raise StorageUnavailable(f"{what}: kept conflicting with concurrent commits: {exc}") from exc
                log.info("%s conflicted with a concurrent commit (%s); planning it again", what, exc)
                time.sleep(0.1 * 2**attempt)
                continue
            except CommitFailedException as exc:
                raise StorageUnavailable(f"{what}: commit lost every retry to concurrent writers: {exc}") from exc
            except StorageUnavailable:
                raise  # the catalog was unreachable: already classified (it is an OSError too)
            except OSError as exc:
                raise classify(exc, what) from exc
            if lost := LOST_RACES.count - lost:
                # Names the table pyiceberg's retry warnings do not: bench/fleet_night.py counts these lines.
                log.info("%s: lost %d race(s), committed after %.2fs", what, lost, time.monotonic() - started)
            return result
        raise AssertionError("unreachable")

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

    # ------------------------------------------------------------------ beside the tables: discovery, report

    def record_discovery(self, logical_date: dt.date, summary: Mapping[str, Any]) -> dict[str, Any]:
        """Keep what discovery found and could not do on this night (rewritten by a rerun of the same night)."""
        entry = {
            "logical_date": logical_date.isoformat(),
            "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **summary,
        }
        self.storage.write_json(keys.discovery_key(logical_date), entry)
        return entry

    def latest_discovery(self) -> dict[str, Any] | None:
        """The most recent night's discovery record, or None when no nightly run recorded one."""
        names = sorted(
            info.base_name
            for info in self.storage.list_files(keys.DISCOVERY_PREFIX)
            if info.base_name.endswith(".json")
        )
        if not names:
            return None
        data = self.storage.read_json(f"{keys.DISCOVERY_PREFIX}/{names[-1]}")
        return data if isinstance(data, dict) else None

    @property
    def report_uri(self) -> str:
        """Where the published comparison report lives."""
        return f"{self.uri}/{keys.REPORT_KEY}"

    def publish_report(self, html: bytes) -> str:
        """Replace the published comparison report; returns its URI."""
        self.storage.write_bytes(keys.REPORT_KEY, html)
        log.info("report published to %s", self.report_uri)
        return self.report_uri

    # ------------------------------------------------------------------ reading

    def read_table(
        self, table: str, *, area: str = "published", filter: Any = None, row_filter: BooleanExpression | None = None
    ) -> pa.Table:
        """Every row of ``table`` in ``area`` at its current snapshot (runs not published included; use the
        DuckDB views for published data). ``row_filter`` (pyiceberg) prunes files; ``filter`` (pyarrow) is exact."""
        found = self.tables.existing(table, area)
        if found is None:
            return arrow_schema(table).empty_table()
        scan = found.scan(row_filter=row_filter) if row_filter is not None else found.scan()
        rows = as_schema(table, guarded_read(f"read {table}", scan.to_arrow))
        return rows.filter(filter) if filter is not None else rows

    def run_records(
        self,
        *,
        statuses: Iterable[str] = ("published", "quarantined", "failed"),
        filter: Any = None,
        areas: Iterable[str] = ("published", "quarantine"),
        row_filter: BooleanExpression | None = None,
    ) -> list[RunRecord]:
        """Run records matching ``filter`` (a pyarrow expression), one per run_id: published beats quarantined
        beats failed."""
        wanted = set(statuses)
        best: dict[str, dict[str, Any]] = {}
        for area in areas:
            for row in self.read_table("runs", area=area, filter=filter, row_filter=row_filter).to_pylist():
                current = best.get(row["run_id"])
                if current is None or _STATUS_RANK[row["status"]] < _STATUS_RANK[current["status"]]:
                    best[row["run_id"]] = row
        return sorted(
            (RunRecord.from_row(row) for row in best.values() if row["status"] in wanted),
            key=lambda r: (r.logical_date, r.run_id),
        )

    def find_run(self, run_id: str, *, area: str | None = None, eval_date: dt.date | None = None) -> RunRecord | None:
        """The run record of ``run_id`` in ``area`` (both areas when None), or None."""
        from pyiceberg.expressions import And

        expr: BooleanExpression = equal("run_id", run_id)
        if eval_date is not None:
            expr = And(expr, equal(PARTITION_COLUMN, eval_date.isoformat()))
        found = self.run_records(row_filter=expr, areas=("published", "quarantine") if area is None else (area,))
        return found[0] if found else None

    def read_run_table(self, table: str, record: RunRecord, *, area: str = "published") -> pa.Table | None:
        """One run's rows of one data table, or None when that run wrote no such rows."""
        rows = self.read_table(table, area=area, row_filter=run_filter(record))
        return rows if rows.num_rows else None


def _republishing(record: RunRecord) -> RunRecord:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return record.replace(status="failed", row_counts={}, error=f"interrupted while republishing (started {started})")
