"""CLI commands that query the warehouse: ``evals query`` and ``evals leaderboard``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import duckdb


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def emit(relation: duckdb.DuckDBPyRelation, fmt: OutputFormat, out: Path | None, max_rows: int = 200) -> None:
    """Print a relation as a table, or write it as csv/json/parquet to ``out`` (stdout for csv/json)."""
    import json
    import sys

    if fmt is OutputFormat.table:
        if out is not None:
            raise typer.BadParameter("--out needs --format csv, json or parquet")
        relation.show(max_rows=max_rows, max_width=10_000)
        return
    if fmt is OutputFormat.parquet:
        if out is None:
            raise typer.BadParameter("--format parquet needs --out FILE")
        relation.write_parquet(str(out))
    elif fmt is OutputFormat.csv:
        if out is None:
            sys.stdout.write(relation.df().to_csv(index=False))
            return
        relation.write_csv(str(out))
    else:
        rows = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
        text = json.dumps(rows, indent=2, default=str)
        if out is None:
            sys.stdout.write(text + "\n")
            return
        out.write_text(text + "\n")
    typer.echo(f"wrote {out}", err=True)


def query(
    sql: str = typer.Argument(
        ...,
        help="SQL over the views runs, accuracy, latency, latency_samples, "
        "comparisons, all_runs, quarantined_<table>, leaderboard.",
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (csv, json, parquet)."),
) -> None:
    """Run SQL against the published warehouse (EVALS_WAREHOUSE) with DuckDB."""
    import duckdb

    from evals.analysis.views import connect

    con = connect()
    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise typer.BadParameter(str(exc).splitlines()[0], param_hint="SQL") from exc
    if relation is None:
        return  # a statement without a result (e.g. SET)
    emit(relation, fmt, out)


def leaderboard(
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (csv, json, parquet)."),
) -> None:
    """Latest published run per model: headline accuracy, P95 TTFT/E2E, tokens/s, USD per 1M output tokens."""
    from evals.analysis.views import connect

    emit(connect().sql("select * from leaderboard"), fmt, out)


def register(app: typer.Typer) -> None:
    app.command("query")(query)
    app.command("leaderboard")(leaderboard)
