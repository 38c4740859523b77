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
    from evals import pipeline, planning

    when = dt.datetime.fromisoformat(logical_date) if logical_date else dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    context = {"dag_id": None, "dag_run_id": None, "logical_date": when.isoformat()}
    params = {"checkpoints": checkpoint, "suite": suite, "scenario": scenario, "limit": limit,
              "backend": backend, "endpoint": endpoint}  # fmt: skip
    items = planning.plan_manual(params, context)
    for item in items:
        try:
            pipeline.publish_step(pipeline.evaluate_step(pipeline.materialize_step(item, context), context))
        except Exception as exc:  # recorded as failed by the step; the other checkpoints go on
            name = item["ref"]["ref"] if item.get("ref") else item.get("entry")
            typer.echo(f"error: {name}: {type(exc).__name__}: {exc}", err=True)
    pipeline.compare_step(items, context)
    pipeline.summarize_step(items, context)


def demo(
    workdir: Path = typer.Option(Path(".cache/demo"), help="Throwaway AIRFLOW_HOME and demo watch-list."),
    logical_date: str | None = typer.Option(None, help="Logical date of the DAG run (default: now, UTC)."),
) -> None:
    """Run the nightly DAG (Airflow, SQLite) on the embedded default warehouse and print the leaderboard."""
    from evals.demo import run_demo

    raise typer.Exit(run_demo(workdir, logical_date))


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("demo")(demo)
