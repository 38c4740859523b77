"""The ``evals latency`` command: benchmark an endpoint or a checkpoint with a scenario, print, save, publish."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from evals.cli.output import write_json
from evals.report.text import format_latency_table


def latency(
    scenario: str = typer.Option(..., "--scenario", "-s", help="Scenario name (smoke, chat-slo) or YAML file."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="Base URL of a running OpenAI-compatible server."),
    model: str | None = typer.Option(None, "--model", help="Model name the endpoint serves (sent in requests)."),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Checkpoint directory: start a server for it (vLLM on GPU, else transformers)."
    ),
    tokenizer: str | None = typer.Option(
        None, "--tokenizer", help="Tokenizer directory for synthetic prompts (default: --checkpoint, or --model)."
    ),
    backend: str | None = typer.Option(None, "--backend", help="auto | vllm | transformers (with --checkpoint)."),
    model_id: str | None = typer.Option(None, "--model-id", help="Model id recorded in the rows (default --model)."),
    revision: str | None = typer.Option(
        None,
        "--revision",
        help="Revision recorded (default: --checkpoint's content hash; needed for --endpoint --publish).",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the per-level rows (latency columns) here."),
    publish: bool = typer.Option(False, "--publish", help="Write the run to the warehouse (EVALS_WAREHOUSE)."),
    source: str = typer.Option("local", "--source", help="Checkpoint source recorded with --publish."),
    processes: int = typer.Option(
        1, "--processes", min=1, help="Load generator processes per level, one shared schedule (past one core)."
    ),
) -> None:
    """Benchmark an endpoint (--endpoint URL --model NAME) or a checkpoint (--checkpoint DIR) with a scenario."""
    from evals.checkpoints import CheckpointRef
    from evals.checkpoints.content import pinned_revision
    from evals.errors import EvalsError
    from evals.latency.runner import run_scenario
    from evals.pipeline.evaluate import evaluate_checkpoint
    from evals.pipeline.outcome import merge
    from evals.pipeline.plan import Options
    from evals.pipeline.publish import publish as publish_outcome
    from evals.pipeline.publish import run_context
    from evals.settings import get_settings

    if (endpoint is None) == (checkpoint is None):
        raise typer.BadParameter("give exactly one of --endpoint URL or --checkpoint DIR")
    try:
        if endpoint is not None:
            if not model:
                raise typer.BadParameter("--endpoint needs --model (the name the server serves)")
            ref = CheckpointRef(
                source, model_id or model, pinned_revision(revision, None, publishing=publish) if publish else None
            )
            result = run_scenario(
                scenario,
                endpoint,
                model,
                model_id=ref.model_id,
                revision=ref.revision or "unknown",
                tokenizer_dir=tokenizer or model,
                processes=processes,
            )
            outcome = merge(None, result)
        else:
            assert checkpoint is not None
            # The same serving and latency run as the pipeline's: one model load, the scenario, the server stopped.
            ref = CheckpointRef(
                source,
                model_id or model or checkpoint.name,
                pinned_revision(revision, checkpoint, publishing=True),
                uri=str(checkpoint.resolve()),
            )
            settings = get_settings()
            if backend:
                settings = settings.model_copy(update={"latency_backend": backend})
            outcome = evaluate_checkpoint(
                checkpoint, ref, suite=None, scenario=scenario, settings=settings, processes=processes
            )
            assert outcome.latency is not None
            result = outcome.latency
        typer.echo(format_latency_table(result))
        if json_out is not None:
            write_json(result.latency_rows, json_out)
        if publish:
            if ref.uri is None:
                ref = dataclasses.replace(ref, uri=endpoint)
            options = Options(suite=None, scenario=result.scenario.name, scenario_version=result.scenario.version)
            record = publish_outcome(ref, options, run_context(), outcome)
            typer.echo(f"published run {record.run_id}", err=True)
    except EvalsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def register(app: typer.Typer) -> None:
    app.command("latency")(latency)
