"""CLI commands that maintain the warehouse: ``evals warehouse compact|maintain|migrate``."""

from __future__ import annotations

import datetime as dt

import typer

from evals.cli.aliases import hidden_alias

warehouse_app = typer.Typer(help="Maintain the Iceberg warehouse.", no_args_is_help=True)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not a date (YYYY-MM-DD): {value!r}", param_hint=option) from exc


@warehouse_app.command("compact")
def compact(
    table: str = typer.Option("all", help="Table to compact, or 'all'."),
    start: str | None = typer.Option(None, help="First eval_date (YYYY-MM-DD) to compact."),
    end: str | None = typer.Option(
        None, help="Last eval_date to compact; default: today minus EVALS_COMPACT_AFTER_DAYS."
    ),
) -> None:
    """Rewrite each partition's data files as one file, one Iceberg commit per partition (query results unchanged)."""
    from evals.warehouse import Warehouse
    from evals.warehouse.compaction import compact as compact_table
    from evals.warehouse.compaction import compact_all, compaction_cutoff

    warehouse = Warehouse.from_settings()
    first = _date(start, "--start")
    last = _date(end, "--end") or compaction_cutoff(warehouse.settings)
    results = compact_all(warehouse, first, last) if table == "all" else [compact_table(warehouse, table, first, last)]
    for result in results:
        typer.echo(
            f"{result.table}: {result.partitions} partitions, {result.files_merged} files -> "
            f"{result.partitions} files, {result.rows} rows"
            + (f" ({result.skipped} changed meanwhile, left for next time)" if result.skipped else "")
        )


@warehouse_app.command("maintain")
def maintain() -> None:
    """Expire snapshots older than EVALS_SNAPSHOT_RETENTION_HOURS and delete files no snapshot references."""
    from evals.warehouse import Warehouse
    from evals.warehouse.maintenance import maintain as run_maintenance

    for result in run_maintenance(Warehouse.from_settings()):
        typer.echo(
            f"{result.area}.{result.table}: {result.snapshots_expired} snapshot(s) expired, "
            f"{result.files_deleted} orphaned file(s) deleted"
        )


@warehouse_app.command("migrate")
def migrate(
    source: str = typer.Option(..., "--from", help="Root URI of a Hive-layout warehouse (file:// or s3://)."),
) -> None:
    """Bring the published runs of a Hive-layout warehouse (round 1's format) into the Iceberg tables, once each."""
    from evals.warehouse import Warehouse
    from evals.warehouse.migrate import migrate as run_migration

    typer.echo(run_migration(source, Warehouse.from_settings()).summary())


def register(app: typer.Typer) -> None:
    app.add_typer(warehouse_app, name="warehouse")
    hidden_alias(app, "compact", "warehouse compact", compact)
