"""CLI commands of the validation gate: ``evals quarantine list|show|revalidate``."""

from __future__ import annotations

import typer

from evals.cli.aliases import hidden_alias
from evals.cli.output import write_json

quarantine_app = typer.Typer(
    help="Quarantined runs: kept, never published until they pass validation.", no_args_is_help=True
)


@quarantine_app.command("list")
def list_quarantined() -> None:
    """Show quarantined runs with the reasons they failed validation."""
    from evals.validation.gate import quarantined_runs

    records = quarantined_runs()
    if not records:
        typer.echo("no quarantined runs")
        return
    for record in records:
        typer.echo(
            f"{record.run_id}  {record.eval_date}  {record.model_id}@{record.revision[:12]}  "
            f"suite={record.suite} scenario={record.scenario}"
        )
        typer.echo(f"    reason: {record.error or '(none recorded)'}")


@quarantine_app.command("show")
def show(run: str = typer.Argument(..., help="run_id of a quarantined run.")) -> None:
    """Print the stored validation result (JSON) of a quarantined run."""
    from evals.validation.gate import quarantine_report

    report = quarantine_report(run)
    if report is None:
        typer.echo(f"no validation result for {run}", err=True)
        raise typer.Exit(2)
    write_json(report)


@quarantine_app.command("revalidate")
def revalidate(run: str = typer.Option(..., "--run", help="run_id of a quarantined run.")) -> None:
    """Re-validate a quarantined run with the current thresholds; publish it if it passes now."""
    from evals.errors import RunNotFound, ValidationFailed
    from evals.validation.gate import revalidate as revalidate_run

    try:
        record, published_now = revalidate_run(run)
    except RunNotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except ValidationFailed as exc:
        typer.echo(f"still quarantined: {exc}", err=True)
        raise typer.Exit(1) from exc
    state = "published" if published_now else "already published, nothing to do"
    typer.echo(f"{record.run_id} {record.model_id}@{record.revision[:12]}: {state}")


def register(app: typer.Typer) -> None:
    app.add_typer(quarantine_app, name="quarantine")
    hidden_alias(app, "validate", "quarantine revalidate", revalidate)
