"""One checkpoint, one model load: serve it, run the accuracy suite and the latency scenario, merge provenance."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError

if TYPE_CHECKING:
    from evals.accuracy.runner import AccuracyResult
    from evals.checkpoints import CheckpointRef
    from evals.latency.runner import LatencyResult
    from evals.latency.server import ServerHandle
    from evals.settings import Settings
    from evals.validation import Expected

log = logging.getLogger(__name__)
progress = logging.getLogger("evals.progress")


def is_server_backend(name: str | None) -> bool:
    """Whether accuracy backend ``name`` talks to an OpenAI-compatible server (the registry's needs_url)."""
    from evals.accuracy.backends import BACKENDS, get_backend

    return name in BACKENDS and get_backend(name).needs_url


@dataclass
class Outcome:
    """Rows per table, the run record fields they imply, and what validation should expect of them."""

    tables: dict[str, list[dict[str, Any]]]
    record_fields: dict[str, Any]
    expected: Expected
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """How this checkpoint is run: which accuracy backend, whether a server is needed and which one."""

    accuracy_backend: str | None
    server_backend: str | None  # vllm | transformers | external | None (no server)

    @property
    def shares_server(self) -> bool:
        return is_server_backend(self.accuracy_backend)


def choose_plan(
    *, suite: str | None, scenario: str | None, backend: str, endpoint: str | None, settings: Settings
) -> Plan:
    """``auto``: on a GPU worker one vLLM server answers both evaluations (it returns prompt logprobs, so
    multiple-choice works); on CPU, lm-eval runs in-process (``transformers serve`` returns no logprobs) and
    ``transformers serve`` carries the latency scenario."""
    from evals.latency.server import choose_backend

    needs_server = scenario is not None or is_server_backend(backend)
    server = None
    if needs_server or (backend == "auto" and suite is not None):
        server = "external" if endpoint else choose_backend(settings.latency_backend)
    accuracy = None
    if suite is not None:
        accuracy = backend if backend != "auto" else ("local-completions" if server == "vllm" else "hf")
    if accuracy == "hf" and not needs_server:
        server = None
    if endpoint and scenario is None and not is_server_backend(accuracy):
        raise ConfigError(f"an endpoint was given but nothing uses it (backend {accuracy}, no scenario)")
    return Plan(accuracy, server)


def evaluate_checkpoint(
    directory: Path,
    ref: CheckpointRef,
    *,
    suite: str | None,
    scenario: str | None,
    limit: int | None = None,
    backend: str = "auto",
    endpoint: str | None = None,
    settings: Settings | None = None,
) -> Outcome:
    """Evaluate the materialized checkpoint in ``directory``; the model is loaded once where the backend allows."""
    from evals.settings import get_settings

    settings = settings or get_settings()
    if ref.revision is None:
        raise ConfigError(f"{ref} must be pinned before it is evaluated")
    plan = choose_plan(suite=suite, scenario=scenario, backend=backend, endpoint=endpoint, settings=settings)
    log.info("evaluating %s: accuracy via %s, server %s", ref, plan.accuracy_backend, plan.server_backend)
    accuracy: AccuracyResult | None = None
    latency: LatencyResult | None = None
    if suite is not None and plan.accuracy_backend is not None and not plan.shares_server:
        # In-process accuracy first, then the server: never two copies of the model in memory at once.
        accuracy = _run_accuracy(suite, plan, directory, ref, None, limit, settings)
    if plan.server_backend is not None:
        with _server(plan, directory, ref, endpoint, settings) as server:
            if suite is not None and plan.shares_server:
                accuracy = _run_accuracy(suite, plan, directory, ref, server, limit, settings)
            if scenario is not None:
                latency = _run_latency(scenario, server, directory, ref, settings)
    return merge(accuracy, latency)


def _run_accuracy(
    suite: str,
    plan: Plan,
    directory: Path,
    ref: CheckpointRef,
    server: ServerHandle | None,
    limit: int | None,
    settings: Settings,
) -> AccuracyResult:
    from evals.accuracy.runner import run_suite
    from evals.checkpoints import allows_remote_code

    progress.info("accuracy: %s suite %s via %s ...", ref.model_id, suite, plan.accuracy_backend)
    result = run_suite(
        None if server is not None else directory,
        suite,
        model_id=ref.model_id,
        revision=str(ref.revision),
        backend=str(plan.accuracy_backend),
        base_url=f"{server.endpoint}/v1/completions" if server is not None else None,
        served_model=server.model if server is not None else None,
        limit=limit,
        allow_remote_code=allows_remote_code(ref, settings),
        settings=settings,
    )
    progress.info("accuracy: %s done in %.1fs (%d rows)", ref.model_id, result.duration_s, len(result.rows))
    return result


@contextlib.contextmanager
def _server(plan: Plan, directory: Path, ref: CheckpointRef, endpoint: str | None, settings: Settings) -> Any:
    from evals.latency.server import serve

    progress.info("serve: %s with %s ...", ref.model_id, plan.server_backend)
    if plan.server_backend == "external":
        with serve(endpoint=endpoint, model_name=ref.model_id, settings=settings) as handle:
            yield handle
        return
    with serve(directory, model_name=ref.model_id, backend=plan.server_backend, settings=settings) as handle:
        progress.info("serve: %s ready in %.1fs at %s", ref.model_id, handle.load_s or 0.0, handle.endpoint)
        yield handle


def _run_latency(
    scenario_name: str, server: ServerHandle, directory: Path, ref: CheckpointRef, settings: Settings
) -> LatencyResult:
    from evals.latency.loadgen import run as run_load
    from evals.latency.prompts import scenario_prompts
    from evals.latency.runner import run_scenario_async
    from evals.latency.scenario import load_scenario

    scenario, path = load_scenario(scenario_name, settings.latency_scenario_dir)
    prompts = scenario_prompts(scenario, path.parent, directory)
    progress.info("latency: %s scenario %s (%d levels) ...", ref.model_id, scenario.name, len(scenario.levels))
    result = run_load(
        run_scenario_async(
            scenario,
            server,
            prompts,
            model_id=ref.model_id,
            revision=str(ref.revision),
            gpu_hour_usd=settings.latency_gpu_hour_usd,
        )
    )
    for level in result.levels:
        row = level.row
        progress.info(
            "latency: %s %s=%g: ttft p95 %.1f ms, e2e p95 %.1f ms, %.1f tok/s, goodput %.2f, %d/%d failed",
            ref.model_id, row["load_type"], row["load"], row["ttft_p95_ms"] or float("nan"),
            row["e2e_p95_ms"] or float("nan"), row["output_tokens_per_s"] or 0.0, row["goodput"] or 0.0,
            row["n_failed"], row["n_requests"],
        )  # fmt: skip
    return result


def merge(accuracy: AccuracyResult | None, latency: LatencyResult | None) -> Outcome:
    """One run's tables, ``runs`` fields (provenance of both halves) and validation references."""
    from evals.validation import Expected

    tables: dict[str, list[dict[str, Any]]] = {}
    fields: dict[str, Any] = {}
    config: dict[str, Any] = {}
    n_samples: dict[str, int] = {}
    metrics: dict[str, list[str]] = {}
    requests: dict[tuple[str, float], int] = {}
    samples: dict[tuple[str, str, str], int] = {}
    if accuracy is not None:
        tables.update(accuracy.tables())
        fields.update(accuracy.record_fields())
        config["accuracy"] = accuracy.provenance
        n_samples, metrics = _accuracy_expectations(accuracy.raw_results)
        samples = dict(accuracy.sample_counts)
    if latency is not None:
        tables.update(latency.tables())
        fields.setdefault("versions", latency.versions)
        fields["hardware"] = latency.hardware
        fields["backend"] = "+".join(b for b in (fields.get("backend"), latency.backend) if b)
        config["latency"] = latency.config
        requests = _issued_requests(latency)
        if accuracy is None:
            fields["started_at"] = latency.started_at
    fields["config"] = config
    fields["config_hash"] = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    notes = list(latency.notes) if latency is not None else []
    expected = Expected(n_samples=n_samples, metrics=metrics, requests=requests, samples=samples)
    return Outcome(tables, {k: v for k, v in fields.items() if k in _RECORD_FIELDS}, expected, notes)


# suite/suite_version are keys of the run id: they come from the plan, never from the evaluation's result.
_RECORD_FIELDS = {"backend", "dtype", "versions", "hardware", "config_hash", "config", "started_at"}


def _issued_requests(latency: LatencyResult) -> dict[tuple[str, float], int]:
    """Requests each level that ran was asked to issue (the scenario's count; a duration-bound level's row)."""
    issued = {(row["load_type"], float(row["load"])): int(row["n_requests"]) for row in latency.latency_rows}
    for level in latency.scenario.levels:
        key = (level.load_type, float(level.load))
        asked = latency.scenario.level_requests(level)
        if key in issued and asked is not None:
            issued[key] = int(asked)
    return issued


def _accuracy_expectations(raw: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """What lm-eval itself says it evaluated: samples per task, ``metric,filter`` keys per task and group.

    The normalized rows are checked against these, so a metric lost in normalization (e.g. a NaN value) shows
    up as a missing row and quarantines the run instead of silently shrinking it.
    """
    n_samples = {
        task: int(counts["effective"])
        for task, counts in (raw.get("n-samples") or {}).items()
        if isinstance(counts, Mapping) and counts.get("effective") is not None
    }
    # lm-eval counts a group's samples as the sum of its subtasks' (nested groups included).
    subtasks = raw.get("group_subtasks") or {}

    def group_total(group: str, seen: frozenset[str] = frozenset()) -> int | None:
        counts = [
            n_samples.get(child) if child not in subtasks else group_total(child, seen | {group})
            for child in subtasks.get(group, [])
            if child not in seen
        ]
        return sum(c for c in counts if c is not None) if counts and None not in counts else None

    for group in subtasks:
        if group not in n_samples and (total := group_total(group)) is not None:
            n_samples[group] = total
    metrics: dict[str, list[str]] = {}
    named = {**(raw.get("results") or {}), **(raw.get("groups") or {})}
    for task, values in named.items():
        # lm-eval's own keys, "metric,filter": a value lost for one filter must not hide behind another filter.
        names = sorted({key for key in values if "," in key and not key.split(",", 1)[0].endswith("_stderr")})
        if names:
            metrics[task] = names
    return n_samples, metrics
