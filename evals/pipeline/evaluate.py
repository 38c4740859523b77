"""One checkpoint, one model load: serve it, run the accuracy suite and the latency scenario, merge the results."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError
from evals.pipeline.outcome import Outcome, merge

if TYPE_CHECKING:
    from evals.accuracy.runner import AccuracyResult
    from evals.checkpoints import CheckpointRef
    from evals.latency.runner import LatencyResult
    from evals.latency.server import ServerHandle
    from evals.settings import Settings

log = logging.getLogger(__name__)
progress = logging.getLogger("evals.progress")


def is_server_backend(name: str | None) -> bool:
    """Whether accuracy backend ``name`` talks to an OpenAI-compatible server (the registry's needs_url)."""
    from evals.accuracy.backends import BACKENDS, get_backend

    return name is not None and name in BACKENDS and get_backend(name).needs_url


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
    processes: int = 1,
) -> Outcome:
    """Evaluate the materialized checkpoint in ``directory``; the model is loaded once where the backend allows.

    ``processes`` > 1 sends each latency level from that many load generator processes (past one core).
    """
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
                latency = _run_latency(scenario, server, directory, ref, settings, processes)
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
    scenario_name: str, server: ServerHandle, directory: Path, ref: CheckpointRef, settings: Settings, processes: int
) -> LatencyResult:
    from evals.latency.loadgen import run as run_load
    from evals.latency.prompt_sets import scenario_prompts
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
            processes=processes,
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
