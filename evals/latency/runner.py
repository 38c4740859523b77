"""Run a latency scenario end to end against a server: levels in order, early stop at saturation."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.environment import detect_hardware, package_versions
from evals.latency.client import Target
from evals.latency.loadgen import LevelRun, run
from evals.latency.metrics import LevelSummary, sample_rows, saturation_reason, summarize_level
from evals.latency.processes import run_level_processes
from evals.latency.prompt_sets import scenario_prompts
from evals.latency.prompts import Prompt
from evals.latency.rag import by_length
from evals.latency.scenario import ConcurrencyLevel, RateLevel, Scenario, load_scenario
from evals.latency.server import ServerHandle, serve
from evals.latency.trials import pooled, trial_columns
from evals.redact import redact_command, redact_url

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from evals.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LatencyResult:
    """What one scenario run produced: rows for the ``latency`` and ``latency_samples`` tables, and context.

    ``levels`` has one summary per level run (same order as ``latency_rows``); ``notes`` says why a sweep stopped
    early and which levels were skipped; ``config`` is the provenance stored in the run record.
    """

    scenario: Scenario
    model_id: str
    revision: str
    levels: list[LevelSummary]
    sample_rows: list[dict[str, Any]]
    notes: list[str]
    config: dict[str, Any]
    hardware: dict[str, Any]
    versions: dict[str, str | None]
    backend: str
    started_at: dt.datetime
    finished_at: dt.datetime
    skipped: list[str] = field(default_factory=list)

    @property
    def latency_rows(self) -> list[dict[str, Any]]:
        return [level.row for level in self.levels]

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The frames for ``Warehouse.write_run`` (run_id and eval_date are filled by the warehouse)."""
        return {"latency": self.latency_rows, "latency_samples": self.sample_rows}

    def issued_requests(self) -> dict[tuple[str, float], int]:
        """Requests each level that ran was asked to issue (the scenario's count; a duration-bound level's row):
        what the gate expects to find in ``latency_samples``."""
        issued = {(row["load_type"], float(row["load"])): int(row["n_requests"]) for row in self.latency_rows}
        trials = {(row["load_type"], float(row["load"])): int(row.get("n_trials") or 1) for row in self.latency_rows}
        for level in self.scenario.levels:
            key = (level.load_type, float(level.load))
            asked = self.scenario.level_requests(level)
            if key in issued and asked is not None:  # a saturated level may have stopped before its last trial
                issued[key] = int(asked) * trials[key]
        return issued


def _level_label(level: ConcurrencyLevel | RateLevel, input_tokens: int | None = None) -> str:
    label = f"{level.load_type} {level.load:g}"
    return label if input_tokens is None else f"{label} input {input_tokens}"


async def run_scenario_async(
    scenario: Scenario,
    server: ServerHandle,
    prompts: Sequence[Prompt],
    *,
    model_id: str,
    revision: str,
    gpu_hour_usd: float | None = None,
    hardware: dict[str, Any] | None = None,
    processes: int = 1,
) -> LatencyResult:
    """Run every level of ``scenario`` against ``server``; a saturated level ends its sweep (rate or concurrency).

    ``processes`` > 1 sends each level from that many load generator processes on one schedule (past one core).
    """
    started_at = dt.datetime.now(dt.UTC)
    price = scenario.gpu_hour_usd if gpu_hour_usd is None else gpu_hour_usd
    # CPU-only servers are priced as one unit at the scenario's hourly price, so the formula stays reproducible
    # from the row: usd = gpu_hour_usd x gpu_count / (tok/s x 3600) x 1e6.
    priced_gpus = server.gpu_count or 1
    target = Target(
        base_url=server.endpoint,
        model=server.model,
        api=scenario.api,
        max_tokens=scenario.output.max_tokens,
        temperature=scenario.output.temperature,
        ignore_eos=scenario.output.ignore_eos and server.accepts_ignore_eos,
        headers=server.headers,
    )
    levels: list[LevelSummary] = []
    samples: list[dict[str, Any]] = []
    notes: list[str] = []
    skipped: list[str] = []
    saturated_kinds: dict[str, str] = {}
    # A prompt-length sweep runs every level once per context length, shortest first; other scenarios one step.
    steps = by_length(prompts)
    used = dict.fromkeys(steps, 0)
    for number, level in enumerate(scenario.levels):
        if level.load_type in saturated_kinds:
            skipped.extend(_level_label(level, step) for step in steps)
            continue
        for position, (step, step_prompts) in enumerate(steps.items()):
            label = _level_label(level, step)

            def summarize(measured: LevelRun, step: int | None = step) -> LevelSummary:
                return summarize_level(
                    measured,
                    scenario=scenario.name,
                    slo=scenario.slo,
                    gpu_hour_usd=price,
                    gpu_count=priced_gpus,
                    model_id=model_id,
                    revision=revision,
                    input_tokens=step,
                )

            trials: list[LevelRun] = []
            per_trial: list[LevelSummary] = []
            reason = None
            for trial in range(scenario.trials):
                log.info(
                    "level %s: %s%s", number, label, f" trial {trial + 1}/{scenario.trials}" * (scenario.trials > 1)
                )
                tag = f"{scenario.name}-{number}" if step is None else f"{scenario.name}-{number}-{step}"
                trials.append(
                    await run_level_processes(
                        target,
                        step_prompts,
                        level,
                        processes=processes,
                        requests=scenario.level_requests(level),
                        duration_s=level.duration_s,
                        warmup_requests=scenario.warmup_requests,
                        timeout_s=scenario.timeout_s,
                        # Trial 0 keeps the seed a level run once always had; later trials draw new arrivals.
                        seed=scenario.seed + number + trial * len(scenario.levels),
                        tag=tag if trial == 0 else f"{tag}-t{trial}",
                        prompt_offset=used[step],
                        # A hosted API (backend "endpoint") exposes no Prometheus metrics of its own: nothing to scrape.
                        metrics_url=None if server.backend == "endpoint" else f"{server.endpoint.rstrip('/')}/metrics",
                    )
                )
                used[step] = trials[-1].prompts_used
                per_trial.append(summarize(trials[-1]))
                # Queueing builds within a trial and drains before the next: each trial is checked on its own.
                found = saturation_reason(trials[-1], per_trial[-1], scenario.saturation)
                if found and not reason:
                    reason = found if scenario.trials == 1 else f"trial {trial + 1} of {scenario.trials}: {found}"
                if reason and scenario.saturation.stop:
                    break  # the level's remaining trials would only load a saturated server
            run = pooled(trials)
            summary = summarize(run) if len(trials) > 1 else per_trial[0]
            summary.row.update(trial_columns([one.row for one in per_trial]))
            levels.append(summary)
            if summary.row.get("notes"):
                notes.append(f"{label}: {summary.row['notes']}")
            samples.extend(
                sample_rows(run, scenario=scenario.name, model_id=model_id, revision=revision, input_tokens=step)
            )
            if reason:
                notes.append(f"{label}: saturated: {reason}")
            if reason and scenario.saturation.stop:
                if step is None:
                    saturated_kinds[level.load_type] = reason
                else:  # longer prompts at this load would only be slower: the next load starts short again
                    skipped.extend(_level_label(level, later) for later in list(steps)[position + 1 :])
                    break
    if skipped:
        notes.append(f"skipped after saturation: {', '.join(skipped)}")
    for note in notes:
        log.warning("%s", note)
    config = {
        "scenario": scenario.model_dump(mode="json"),
        "scenario_hash": scenario.config_hash(),
        "endpoint": redact_url(server.endpoint),
        "served_model": server.model,
        "server_backend": server.backend,
        "server_command": redact_command(server.command),
        "server_load_s": server.load_s,
        "ignore_eos_sent": target.ignore_eos,
        "prompts": len(prompts),
        "prompts_used": sum(used.values()),
        "notes": notes,
    }
    return LatencyResult(
        scenario=scenario,
        model_id=model_id,
        revision=revision,
        levels=levels,
        sample_rows=samples,
        notes=notes,
        config=config,
        hardware=hardware or detect_hardware(),
        versions=package_versions(),
        backend=server.backend,
        started_at=started_at,
        finished_at=dt.datetime.now(dt.UTC),
        skipped=skipped,
    )


def _scenario(scenario: Scenario | str | Path, settings: Settings | None) -> tuple[Scenario, Path]:
    if isinstance(scenario, Scenario):
        return scenario, Path.cwd()
    extra = settings.latency_scenario_dir if settings is not None else None
    loaded, path = load_scenario(scenario, extra)
    return loaded, path.parent


def run_scenario(
    scenario: Scenario | str | Path,
    endpoint: str,
    model_name: str,
    *,
    model_id: str | None = None,
    revision: str = "unknown",
    tokenizer_dir: str | Path | PreTrainedTokenizerBase | None = None,
    prompts: Sequence[Prompt] | None = None,
    settings: Settings | None = None,
    server: ServerHandle | None = None,
    processes: int = 1,
) -> LatencyResult:
    """Benchmark an already-running OpenAI-compatible ``endpoint`` serving ``model_name`` with ``scenario``.

    ``scenario`` is a :class:`Scenario`, a shipped scenario name or a YAML path. Synthetic prompts are made
    with ``tokenizer_dir`` (the checkpoint's tokenizer). Pass ``server`` (a handle from :func:`serve`) to keep
    what the launcher knows (backend, GPUs priced, ignore_eos support). Blocking; usable without Airflow.
    """
    from evals.settings import get_settings

    settings = settings or get_settings()
    loaded, base_dir = _scenario(scenario, settings)
    prompt_list = list(prompts) if prompts is not None else scenario_prompts(loaded, base_dir, tokenizer_dir)
    if server is not None:
        return run(
            run_scenario_async(
                loaded,
                server,
                prompt_list,
                model_id=model_id or model_name,
                revision=revision,
                gpu_hour_usd=settings.latency_gpu_hour_usd,
                processes=processes,
            )
        )
    with serve(endpoint=endpoint, model_name=model_name, settings=settings) as handle:
        return run(
            run_scenario_async(
                loaded,
                handle,
                prompt_list,
                model_id=model_id or model_name,
                revision=revision,
                gpu_hour_usd=settings.latency_gpu_hour_usd,
                processes=processes,
            )
        )
