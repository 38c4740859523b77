"""CLI commands of the serving decision: ``evals decide`` (a dry run) and ``evals promote MODEL`` (a manual one)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from evals.cli.output import OutputFormat, emit, write_json

if TYPE_CHECKING:
    from evals.pipeline.serving import ServingConfig

PROMOTE_EXIT = 3  # `evals decide`: some challenger would be promoted


def _config(serving: Path | None) -> ServingConfig:
    from evals.pipeline.serving import load_serving

    config = load_serving(serving)
    if config is None:
        raise typer.BadParameter("no serving configuration: set EVALS_SERVING or pass --serving FILE")
    return config


def decide(
    serving: Path | None = typer.Option(None, "--serving", help="Serving config YAML (default: EVALS_SERVING)."),
    day: str | None = typer.Option(None, "--date", help="Night to decide (ISO date; default: the latest)."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table (text) or json/csv/parquet."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (csv, json, parquet)."),
) -> None:
    """Tonight's challengers against the champion, without writing anything. Exit code 3 when one would be promoted."""
    from evals.pipeline.decide import decide_latest
    from evals.report.text import format_decision

    night = dt.date.fromisoformat(day) if day else None
    rows = decide_latest(_config(serving), day=night)
    if fmt is OutputFormat.table and out is None:
        typer.echo("\n\n".join(format_decision(row) for row in rows) if rows else "no challenger to decide")
    else:
        emit(rows, fmt, out)
    if any(row["outcome"] == "promote" for row in rows):
        raise typer.Exit(PROMOTE_EXIT)


def promote(
    model: str = typer.Argument(..., help="Model id (or model_id@revision prefix) of the challenger to promote."),
    reason: str = typer.Option(..., "--reason", help="Why, recorded with the decision."),
    approver: str | None = typer.Option(None, "--approver", help="Who decides (default: the current user)."),
    serving: Path | None = typer.Option(None, "--serving", help="Serving config YAML (default: EVALS_SERVING)."),
) -> None:
    """Record a manual decision to promote MODEL: its latest decision gets the approval outcome ``manual``."""
    import getpass

    from evals.pipeline.decide import promote as record_promotion

    who = approver or getpass.getuser()
    write_json(record_promotion(model, reason, approver=who, config=_config(serving)))


def register(app: typer.Typer) -> None:
    app.command("decide")(decide)
    app.command("promote")(promote)
