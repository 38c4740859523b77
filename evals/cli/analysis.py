"""CLI commands that query the warehouse: ``evals query``, ``leaderboard``, ``compare``, ``report``, ``export``."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path

import typer

from evals.cli.output import OutputFormat, emit, wrote
from evals.schemas import TABLES

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
        help="SQL over the views runs, accuracy, accuracy_samples, latency, latency_samples, "
        "comparisons, change_points, all_runs, quarantined_<table>, leaderboard.",
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (csv, json, parquet)."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
) -> None:
    """Run SQL against the published warehouse (EVALS_WAREHOUSE) with DuckDB."""
    import duckdb

    from evals.analysis.leaderboard import connect

    con = connect(as_of=parse_as_of(as_of))
    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise typer.BadParameter(str(exc).splitlines()[0], param_hint="SQL") from exc
    if relation is None:
        return  # a statement without a result (e.g. SET)
    emit(relation, fmt, out)


class RankBy(StrEnum):
    accuracy = "accuracy"
    slo_accuracy = "slo_accuracy"
    cost_at_slo = "cost_at_slo"
    capacity = "capacity"


def leaderboard(
    rank_by: RankBy = typer.Option(
        RankBy.accuracy,
        "--rank-by",
        help="accuracy (headline), slo_accuracy (accuracy × goodput at capacity), cost_at_slo (USD per 1M output "
        "tokens of requests that met the SLO), capacity (highest load level meeting the SLO).",
    ),
    suite: str | None = typer.Option(None, help="Only this suite's board."),
    scenario: str | None = typer.Option(None, help="Only this latency scenario's board."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (csv, json, parquet)."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
) -> None:
    """Latest published run per model, one board per (suite, scenario), ranked with the SLO in mind.

    Latency columns come from the scenario's reference level (its first) and from the capacity level.
    """
    from evals.analysis.leaderboard import leaderboard as board
    from evals.settings import get_settings
    from evals.warehouse.views import connect

    settings = get_settings()
    con = connect(as_of=parse_as_of(as_of))
    try:
        rows = board(
            con,
            rank_by=rank_by.value,
            suite=suite,
            scenario=scenario,
            min_goodput=settings.leaderboard_min_goodput,
            alpha=settings.compare_alpha,
        )
    finally:
        con.close()
    if not rows:
        typer.echo("no published runs", err=True)
        return
    emit(rows, fmt, out)


EXPORTABLE = (*TABLES, "leaderboard", "all_runs")


def compare(
    model_a: str = typer.Argument(..., help="The model to judge, e.g. org/new-model."),
    model_b: str = typer.Argument(..., help="The model it is compared with (the baseline)."),
    alpha: float | None = typer.Option(None, help="Significance level (default EVALS_COMPARE_ALPHA)."),
    flips: bool = typer.Option(False, "--flips", help="List the questions whose answer changed (B -> A)."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (csv, json, parquet)."),
) -> None:
    """Metric deltas (A − B) with CIs and verdicts, latest published runs of the same suite/scenario.

    Accuracy is paired per question (matched by document hash) where both runs logged samples; MDE is the
    smallest difference the comparison detects at 80 % power; flips +/- counts questions fixed/broken.
    """
    from evals.report.text import format_comparison, format_flips

    if flips:
        from evals.analysis.compare import flips_between

        changed = flips_between(model_a, model_b)
        if fmt is OutputFormat.table:
            typer.echo(format_flips(changed))
            return
        emit(changed, fmt, out)
        return
    from evals.analysis.compare import compare_models

    rows = compare_models(model_a, model_b, alpha=alpha)
    if fmt is not OutputFormat.table:
        from evals.conformance import conform

        emit(conform("comparisons", rows), fmt, out)
        return
    typer.echo(format_comparison(rows))


def report(
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
    publish: bool = typer.Option(False, "--publish", help="Also write <warehouse>/_reports/report.html."),
) -> None:
    """Write the self-contained HTML report: leaderboard, accuracy/latency/cost scatter, trends, CDFs, regressions."""
    from evals.report.build import build_report

    wrote(build_report(out_path=out, publish=publish))


def export(
    table: str = typer.Option(..., "--table", "-t", help=f"One of: {', '.join(EXPORTABLE)}."),
    fmt: OutputFormat = typer.Option(OutputFormat.parquet, "--format", "-f", help="csv, json or parquet."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file."),
    since: str | None = typer.Option(None, help="Only eval_date >= this (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, help="Only eval_date <= this (YYYY-MM-DD)."),
) -> None:
    """Export a published table (or the leaderboard) to one csv/json/parquet file."""

    from evals.analysis.leaderboard import connect

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
