"""CLI commands that run the pipeline: ``evals run`` (no Airflow) and ``evals demo`` (the nightly DAG)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer


def run(
    checkpoint: list[str] = typer.Option(
        ..., "--checkpoint", "-c", help="Ref (hf:org/name@<40-hex sha>, package:smollm2) or dir."
    ),
    suite: str = typer.Option("smoke", help="Accuracy suite, or 'none'."),
    scenario: str = typer.Option("smoke", help="Latency scenario, or 'none'."),
    limit: int | None = typer.Option(None, min=1, help="Max samples per task (debugging)."),
    backend: str = typer.Option("auto", help="auto | hf | vllm | local-completions | local-chat-completions."),
    endpoint: str | None = typer.Option(None, help="Benchmark this running OpenAI-compatible server."),
    logical_date: str | None = typer.Option(None, help="ISO date-time keying the run (default: now, UTC)."),
) -> None:
    """Evaluate checkpoints end to end without Airflow: materialize, evaluate, validate, publish, compare."""
    from evals.pipeline.publish import run_context
    from evals.pipeline.steps import run_checkpoints

    context = run_context(dt.datetime.fromisoformat(logical_date) if logical_date else None)
    params = {"checkpoints": checkpoint, "suite": suite, "scenario": scenario, "limit": limit,
              "backend": backend, "endpoint": endpoint}  # fmt: skip
    run_checkpoints(params, context, on_failure=lambda name, error: typer.echo(f"error: {name}: {error}", err=True))


def demo(
    workdir: Path = typer.Option(Path(".cache/demo"), help="Throwaway AIRFLOW_HOME and demo watch-list."),
    logical_date: str | None = typer.Option(None, help="Logical date of the DAG run (default: now, UTC)."),
) -> None:
    """Run the nightly DAG (Airflow, SQLite) on the embedded default warehouse and print the leaderboard."""
    from evals.pipeline.demo import run_demo

    raise typer.Exit(run_demo(workdir, logical_date))


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("demo")(demo)
