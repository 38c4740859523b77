"""CLI commands that query the warehouse: ``evals query``, ``leaderboard``, ``compare``, ``report``, ``export``."""

from __future__ import annotations

import datetime as dt
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


AS_OF_HELP = "Show the warehouse as it was at this moment (ISO 8601, e.g. 2026-11-29T06:00; UTC unless it says)."


def parse_as_of(value: str | None) -> dt.datetime | None:
    """``--as-of``: an ISO date or timestamp; a naive one is UTC, a bare date means its midnight UTC."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 timestamp: {value!r}", param_hint="--as-of") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def query(
    sql: str = typer.Argument(
        ...,
        help="SQL over the views runs, accuracy, latency, latency_samples, "
        "comparisons, all_runs, quarantined_<table>, leaderboard.",
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (csv, json, parquet)."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
) -> None:
    """Run SQL against the published warehouse (EVALS_WAREHOUSE) with DuckDB."""
    import duckdb

    from evals.analysis.views import connect

    con = connect(as_of=parse_as_of(as_of))
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
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
) -> None:
    """Latest published run per model: headline accuracy, P95 TTFT/E2E, tokens/s, USD per 1M output tokens."""
    from evals.analysis.views import connect

    emit(connect(as_of=parse_as_of(as_of)).sql("select * from leaderboard"), fmt, out)


EXPORTABLE = ("runs", "accuracy", "latency", "latency_samples", "comparisons", "leaderboard", "all_runs")


def compare(
    model_a: str = typer.Argument(..., help="The model to judge, e.g. org/new-model."),
    model_b: str = typer.Argument(..., help="The model it is compared with (the baseline)."),
    alpha: float | None = typer.Option(None, help="Significance level (default EVALS_COMPARE_ALPHA)."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (csv, json, parquet)."),
) -> None:
    """Metric deltas (A − B) with CIs and verdicts, latest published runs of the same suite/scenario."""
    from evals.analysis.compare import compare_models

    rows = compare_models(model_a, model_b, alpha=alpha)
    if fmt is not OutputFormat.table:
        import duckdb

        from evals.schemas import conform

        emit(duckdb.connect().from_arrow(conform("comparisons", rows)), fmt, out)
        return
    typer.echo(format_comparison(rows))


def format_comparison(rows: list[dict[str, object]]) -> str:
    """A terminal table: metric, A, B, delta, CI, verdict (regressions marked)."""

    def num(value: object) -> str:
        return "-" if value is None else f"{value:.4g}"

    head = ("metric", "A", "B", "delta", "CI", "verdict")
    lines = []
    for r in rows:
        ci = f"[{num(r['ci_low'])}, {num(r['ci_high'])}]" if r["ci_low"] is not None else "-"
        mark = "!! " if r["verdict"] == "regression" else ""
        lines.append(
            (str(r["metric"]), num(r["value"]), num(r["baseline_value"]), num(r["delta"]), ci, f"{mark}{r['verdict']}")
        )
    widths = [max(len(x) for x in column) for column in zip(head, *lines, strict=True)]
    first = rows[0] if rows else {}
    title = (
        f"{first.get('model_id')}@{str(first.get('revision'))[:12]} vs "
        f"{first.get('baseline_model_id')}@{str(first.get('baseline_revision') or '')[:12]}"
        if rows
        else "no comparable runs"
    )
    text = [title, "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    text.append("  ".join("-" * w for w in widths))
    text += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    alpha = next((r["alpha"] for r in rows if r["alpha"] is not None), None)
    if alpha is not None:
        text.append(f"CI: {round((1 - float(str(alpha))) * 100)}% two-sided; '-' = no CI (verdict by minimum effect).")
    return "\n".join(text)


def report(
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
    publish: bool = typer.Option(False, "--publish", help="Also write <warehouse>/_reports/report.html."),
) -> None:
    """Write the self-contained HTML report: leaderboard, accuracy/latency/cost scatter, trends, CDFs, regressions."""
    from evals.analysis.report import build_report

    typer.echo(f"wrote {build_report(out_path=out, publish=publish)}", err=True)


def export(
    table: str = typer.Option(..., "--table", "-t", help=f"One of: {', '.join(EXPORTABLE)}."),
    fmt: OutputFormat = typer.Option(OutputFormat.parquet, "--format", "-f", help="csv, json or parquet."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file."),
    since: str | None = typer.Option(None, help="Only eval_date >= this (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, help="Only eval_date <= this (YYYY-MM-DD)."),
) -> None:
    """Export a published table (or the leaderboard) to one csv/json/parquet file."""

    from evals.analysis.views import connect

    if table not in EXPORTABLE:
        raise typer.BadParameter(f"unknown table {table!r}; one of: {', '.join(EXPORTABLE)}", param_hint="--table")
    if fmt is OutputFormat.table:
        raise typer.BadParameter("export writes csv, json or parquet", param_hint="--format")
    bounds = {}
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            try:
                bounds[name] = dt.date.fromisoformat(value)
            except ValueError as exc:
                raise typer.BadParameter(f"not a date: {value!r}", param_hint=f"--{name}") from exc
    conditions = []
    if "since" in bounds:
        conditions.append(f"eval_date >= DATE '{bounds['since']}'")
    if "until" in bounds:
        conditions.append(f"eval_date <= DATE '{bounds['until']}'")
    where = " and ".join(conditions)
    emit(connect().sql(f"select * from {table}" + (f" where {where}" if where else "")), fmt, out)


def register(app: typer.Typer) -> None:
    app.command("query")(query)
    app.command("leaderboard")(leaderboard)
    app.command("compare")(compare)
    app.command("report")(report)
    app.command("export")(export)
