"""The ``evals latency`` command: benchmark an endpoint or a checkpoint with a scenario, print, save, publish."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from evals.latency.runner import LatencyResult

_TABLE_COLUMNS = (
    ("load", "{load_type} {load:g}"),
    ("ok/n", "{n_ok}/{n_requests}"),
    ("TTFT p50/p95/p99 ms", "{ttft_p50_ms:.1f}/{ttft_p95_ms:.1f}/{ttft_p99_ms:.1f}"),
    ("TPOT p50/p95/p99 ms", "{tpot_p50_ms:.1f}/{tpot_p95_ms:.1f}/{tpot_p99_ms:.1f}"),
    ("E2E p50/p95/p99 ms", "{e2e_p50_ms:.0f}/{e2e_p95_ms:.0f}/{e2e_p99_ms:.0f}"),
    ("tok/s", "{output_tokens_per_s:.1f}"),
    ("goodput", "{goodput_text}"),
    ("$/1M tok", "{cost_text}"),
)


def _cells(row: dict[str, Any]) -> list[str]:
    values = {k: (float("nan") if v is None else v) for k, v in row.items()}
    values["n_ok"] = row["n_requests"] - row["n_failed"]
    values["goodput_text"] = "-" if row["goodput"] is None else f"{row['goodput']:.0%}"
    cost = row["usd_per_1m_output_tokens"]
    values["cost_text"] = "-" if cost is None else f"{cost:.2f}"
    return [template.format(**values) for _, template in _TABLE_COLUMNS]


def format_table(result: LatencyResult) -> str:
    """One line per load level: P50/P95/P99 TTFT, TPOT, E2E, tokens/s, goodput, cost; then errors and notes."""
    header = [name for name, _ in _TABLE_COLUMNS]
    body = [_cells(level.row) for level in result.levels]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in (header, *body)]
    for level in result.levels:
        if level.errors:
            kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(level.errors.items()))
            lines.append(f"errors at {level.row['load_type']} {level.row['load']:g}: {kinds}")
    lines.extend(f"note: {note}" for note in result.notes)
    return "\n".join(lines)


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
        typer.echo(format_table(result))
        if json_out is not None:
            json_out.write_text(json.dumps(result.latency_rows, indent=2, default=str) + "\n")
            typer.echo(f"wrote {json_out}", err=True)
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
