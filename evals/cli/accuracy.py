"""The ``evals accuracy`` command: run a suite on a checkpoint, print a per-task table, optionally publish."""

from __future__ import annotations

from pathlib import Path

import typer

from evals.cli.output import write_json
from evals.report.text import format_accuracy_table


def register(app: typer.Typer) -> None:
    app.command("accuracy")(accuracy)


def accuracy(
    checkpoint: str = typer.Option(None, "--checkpoint", help="Checkpoint folder (safetensors + tokenizer)."),
    suite: str = typer.Option("smoke", "--suite", help="Shipped suite name or a suite YAML path."),
    limit: float = typer.Option(None, "--limit", help="Docs per task (integer) or a fraction (0, 1)."),
    backend: str = typer.Option("hf", "--backend", help="hf | vllm | local-completions | local-chat-completions"),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible server URL for server backends."),
    served_model: str = typer.Option(None, "--served-model", help="Model name the server expects."),
    model_id: str = typer.Option(None, "--model-id", help="Model id to record; default: the folder name."),
    revision: str = typer.Option(
        None, "--revision", help="Commit SHA to record; default: the checkpoint's content hash (needed with --publish)."
    ),
    json_out: Path = typer.Option(None, "--json", help="Write rows and provenance to this JSON file."),
    publish: bool = typer.Option(False, "--publish", help="Write a run to the warehouse (EVALS_WAREHOUSE)."),
) -> None:
    """Evaluate a checkpoint on an accuracy suite with lm-eval."""
    from evals.accuracy.runner import run_suite
    from evals.checkpoints.content import pinned_revision
    from evals.errors import EvalsError

    if checkpoint is None and base_url is None:
        raise typer.BadParameter("give --checkpoint, or --base-url with a server backend")
    directory = Path(checkpoint) if checkpoint else None
    try:
        result = run_suite(
            directory,
            suite,
            model_id=model_id or (directory.resolve().name if directory else str(served_model or base_url)),
            revision=pinned_revision(revision, directory, publishing=publish),
            backend=backend,
            base_url=base_url,
            served_model=served_model,
            limit=_limit(limit),
        )
    except EvalsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(format_accuracy_table(result.rows))
    typer.echo(f"{len(result.rows)} rows in {result.duration_s:.1f} s; config_hash {result.config_hash[:12]}")
    if json_out is not None:
        write_json({"rows": result.rows, "provenance": result.provenance}, json_out)
    if publish:
        from evals.checkpoints import CheckpointRef
        from evals.pipeline.outcome import merge
        from evals.pipeline.plan import Options
        from evals.pipeline.publish import publish as publish_outcome
        from evals.pipeline.publish import run_context

        ref = CheckpointRef(
            "local",
            str(result.provenance["model_id"]),
            str(result.provenance["revision"]),
            uri=str(directory.resolve()) if directory else base_url,
        )
        p = result.provenance
        options = Options(suite=p["suite"], suite_version=p["suite_version"], scenario=None)
        try:
            record = publish_outcome(ref, options, run_context(), merge(result, None))
        except EvalsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"published run {record.run_id}")


def _limit(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value >= 1 else value
