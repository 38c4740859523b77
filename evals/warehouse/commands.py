"""CLI commands that maintain the warehouse: ``evals compact``."""

from __future__ import annotations

import datetime as dt

import typer


def compact(
    table: str = typer.Option("all", help="Table to compact, or 'all'."),
    start: str | None = typer.Option(None, help="First eval_date (YYYY-MM-DD) to compact."),
    end: str | None = typer.Option(
        None, help="Last eval_date to compact; default: today minus EVALS_COMPACT_AFTER_DAYS."
    ),
) -> None:
    """Merge old partitions' per-run files into one file per partition (query results unchanged)."""
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
        )


def register(app: typer.Typer) -> None:
    app.command("compact")(compact)
