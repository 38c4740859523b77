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
        help="SQL over the views runs, accuracy, accuracy_samples, latency, latency_samples, "
        "comparisons, change_points, all_runs, quarantined_<table>, leaderboard.",
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (csv, json, parquet)."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
) -> None:
    """Run SQL against the published warehouse (EVALS_WAREHOUSE) with DuckDB."""
    import duckdb

    from evals.warehouse.views import connect

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
    import duckdb
    import pyarrow as pa

    from evals.analysis.ranking import leaderboard as board
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
    emit(duckdb.connect().from_arrow(pa.Table.from_pylist(rows)), fmt, out)


EXPORTABLE = (
    "runs",
    "accuracy",
    "accuracy_samples",
    "latency",
    "latency_samples",
    "comparisons",
    "change_points",
    "leaderboard",
    "all_runs",
)


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
    import duckdb

    if flips:
        import pyarrow as pa

        from evals.analysis.compare import flips_between

        changed = flips_between(model_a, model_b)
        if fmt is OutputFormat.table:
            typer.echo(format_flips(changed))
            return
        emit(duckdb.connect().from_arrow(pa.Table.from_pylist(changed)), fmt, out)
        return
    from evals.analysis.compare import compare_models

    rows = compare_models(model_a, model_b, alpha=alpha)
    if fmt is not OutputFormat.table:
        from evals.schemas import conform

        emit(duckdb.connect().from_arrow(conform("comparisons", rows)), fmt, out)
        return
    typer.echo(format_comparison(rows))


def format_flips(rows: list[dict[str, object]], width: int = 60) -> str:
    """One block per changed question: task, doc, direction, target and both responses (shortened)."""
    if not rows:
        return "no question changed its score"

    def short(value: object) -> str:
        text = " ".join(str(value).split()) if value is not None else "-"
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = []
    for r in rows:
        lines.append(f"{r['task']} doc {r['doc_id']} [{r['metric']},{r['filter']}] {r['change']}")
        lines.append(f"  target: {short(r['target'])}")
        lines.append(f"  A:      {short(r['response'])}")
        lines.append(f"  B:      {short(r['baseline_response'])}")
    fixed = sum(r["change"] == "fixed" for r in rows)
    lines.append(f"{len(rows)} changed: {fixed} fixed, {len(rows) - fixed} broken")
    return "\n".join(lines)


def format_comparison(rows: list[dict[str, object]]) -> str:
    """A terminal table: metric, A, B, delta, CI, method, MDE, flips, verdict (regressions marked)."""

    def num(value: object) -> str:
        return "-" if value is None else f"{value:.4g}"

    head = ("metric", "A", "B", "delta", "CI", "method", "MDE", "flips+/-", "verdict")
    lines = []
    for r in rows:
        ci = f"[{num(r['ci_low'])}, {num(r['ci_high'])}]" if r["ci_low"] is not None else "-"
        mark = "!! " if r["verdict"] == "regression" else ""
        flipped = f"+{r['n_fixed']}/-{r['n_broken']}" if r.get("n_fixed") is not None else "-"
        lines.append(
            (
                str(r["metric"]),
                num(r["value"]),
                num(r["baseline_value"]),
                num(r["delta"]),
                ci,
                str(r.get("method") or "-"),
                num(r.get("mde")),
                flipped,
                f"{mark}{r['verdict']}",
            )
        )
    widths = [max(len(x) for x in column) for column in zip(head, *lines, strict=True)]
    first = rows[0] if rows else {}
    subject = f"{first.get('model_id')}@{str(first.get('revision'))[:12]}"
    if not rows:
        title = "no comparable runs"
    elif first.get("baseline_model_id") is None:
        title = f"{subject}: no earlier run to compare with"
    else:
        title = f"{subject} vs {first.get('baseline_model_id')}@{str(first.get('baseline_revision') or '')[:12]}"
    text = [title, "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    text.append("  ".join("-" * w for w in widths))
    text += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    headline = next((r for r in rows if r["metric"] == "accuracy:headline" and r.get("mde") is not None), None)
    if headline is not None and float(str(headline["mde"])) == 0.0:
        # Paired with no discordant question: the observed variance is 0, so any flip would be a detectable change.
        text.append("no question changed its answer (paired): the headline difference is exactly 0")
    elif headline is not None:
        text.append(
            f"this suite detects ±{float(str(headline['mde'])) * 100:.1f} points of headline accuracy "
            f"({headline.get('method')}, 80% power)"
        )
    alpha = next((r["alpha"] for r in rows if r["alpha"] is not None), None)
    if alpha is not None:
        text.append(f"CI: {round((1 - float(str(alpha))) * 100)}% two-sided; '-' = no CI (verdict by minimum effect).")
    return "\n".join(text)


def report(
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
    publish: bool = typer.Option(False, "--publish", help="Also write <warehouse>/_reports/report.html."),
) -> None:
    """Write the self-contained HTML report: leaderboard, accuracy/latency/cost scatter, trends, CDFs, regressions."""
    from evals.report.build import build_report

    typer.echo(f"wrote {build_report(out_path=out, publish=publish)}", err=True)


def export(
    table: str = typer.Option(..., "--table", "-t", help=f"One of: {', '.join(EXPORTABLE)}."),
    fmt: OutputFormat = typer.Option(OutputFormat.parquet, "--format", "-f", help="csv, json or parquet."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file."),
    since: str | None = typer.Option(None, help="Only eval_date >= this (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, help="Only eval_date <= this (YYYY-MM-DD)."),
) -> None:
    """Export a published table (or the leaderboard) to one csv/json/parquet file."""

    from evals.warehouse.views import connect

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
