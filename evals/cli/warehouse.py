"""CLI commands that maintain the warehouse: ``evals compact``, ``evals warehouse maintain|migrate``."""

from __future__ import annotations

import datetime as dt

import typer

warehouse_app = typer.Typer(help="Maintain the Iceberg warehouse.", no_args_is_help=True)


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
    from evals.warehouse.compaction import compact_all

    warehouse = Warehouse.from_settings()
    first = dt.date.fromisoformat(start) if start else None
    last = (
        dt.date.fromisoformat(end)
        if end
        else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=warehouse.settings.compact_after_days)
    )
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
    app.command("compact")(compact)
    app.add_typer(warehouse_app, name="warehouse")
