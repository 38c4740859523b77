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
    from collections.abc import Iterator

    from evals.accuracy.runner import AccuracyResult
    from evals.checkpoints import CheckpointRef
    from evals.checkpoints.sources.endpoint import EndpointOptions
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

    ``processes`` > 1 sends each latency level from that many load generator processes (past one core). A
    directory holding an ``endpoint.json`` (a materialized ``endpoint`` ref) is a hosted model: see
    :func:`evaluate_hosted`.
    """
    from evals.checkpoints.sources.endpoint import load_descriptor
    from evals.settings import get_settings

    settings = settings or get_settings()
    if ref.revision is None:
        raise ConfigError(f"{ref} must be pinned before it is evaluated")
    hosted = load_descriptor(directory)
    if hosted is not None:
        return evaluate_hosted(
            hosted,
            ref,
            suite=suite,
            scenario=scenario,
            limit=limit,
            backend=backend,
            endpoint=endpoint,
            settings=settings,
            processes=processes,
        )
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
    scenario_name: str,
    server: ServerHandle,
    directory: Path | str | None,
    ref: CheckpointRef,
    settings: Settings,
    processes: int,
) -> LatencyResult:
    from evals.latency.loadgen import run as run_load
    from evals.latency.prompt_sets import scenario_prompts
    from evals.latency.runner import run_scenario_async
    from evals.latency.scenario import load_scenario

    scenario, path = load_scenario(scenario_name, settings.latency_scenario_dir)
    try:
        prompts = scenario_prompts(scenario, path.parent, directory)
    except ConfigError as exc:
        if server.backend != HOSTED_SERVER_BACKEND or directory is not None:
            raise
        raise ConfigError(
            f"{exc}. A hosted model ships no tokenizer: set `tokenizer:` (a local tokenizer directory) in its "
            "endpoint declaration, or use a scenario with its own prompts (jsonl)"
        ) from exc
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


# ---------------------------------------------------------------------------------------------------- hosted

HOSTED_ACCURACY_BACKEND = "local-chat-completions"  # chat APIs give no prompt logprobs: generate_until tasks only
HOSTED_SERVER_BACKEND = "endpoint"  # the ServerHandle backend of a hosted API (nothing started, nothing scraped)


def evaluate_hosted(
    hosted: EndpointOptions,
    ref: CheckpointRef,
    *,
    suite: str | None,
    scenario: str | None,
    limit: int | None = None,
    backend: str = "auto",
    endpoint: str | None = None,
    settings: Settings,
    processes: int = 1,
) -> Outcome:
    """A hosted model behind an OpenAI-compatible API (a materialized ``endpoint`` ref): nothing is served here.

    The key is checked first (``GET /v1/models``: 401/403 is a TerminalError naming where the key lives); the
    latency scenario runs through our load generator with the key in the request headers; cost comes from the
    price list, not GPU-hours; accuracy runs the suite's generate_until tasks through lm-eval's chat-completions
    model (multiple-choice tasks need prompt logprobs chat APIs do not give: skipped, named in the run's config
    ``notes`` and ``endpoint.skipped_tasks``). The key is read when needed and never stored, logged or returned.
    """
    from evals.checkpoints.sources.endpoint import auth_headers, check_access
    from evals.latency.server import ServerHandle
    from evals.redact import redact_url

    if endpoint is not None:
        raise ConfigError(f"{ref} is a hosted model with its own base_url: drop --endpoint ({endpoint})")
    if backend not in ("auto", HOSTED_ACCURACY_BACKEND):
        raise ConfigError(
            f"{ref} is a hosted model: its accuracy runs through {HOSTED_ACCURACY_BACKEND!r} only (got {backend!r})"
        )
    progress.info("hosted: %s at %s: checking access ...", ref.model_id, redact_url(hosted.base_url))
    check_access(hosted)
    notes: list[str] = []
    skipped: dict[str, list[str]] = {}
    accuracy: AccuracyResult | None = None
    if suite is not None:
        accuracy, skipped = _run_hosted_accuracy(suite, hosted, ref, limit, settings)
        if skipped:
            listing = ", ".join(f"{task} ({', '.join(kinds)})" for task, kinds in sorted(skipped.items()))
            notes.append(
                f"accuracy: skipped for a hosted chat API (no prompt logprobs): {listing}"
                + ("" if accuracy is not None else "; no generate_until task left, no accuracy measured")
            )
    latency: LatencyResult | None = None
    if scenario is not None:
        server = ServerHandle(
            endpoint=hosted.base_url,
            model=hosted.model,
            backend=HOSTED_SERVER_BACKEND,
            accepts_ignore_eos=False,  # hosted APIs reject or ignore unknown fields: never sent
            gpu_count=0,
            headers=auth_headers(hosted),
        )
        latency = _run_latency(scenario, server, hosted.tokenizer, ref, settings, processes)
        _price_hosted(latency, hosted)
    for note in notes:
        log.warning("%s: %s", ref.model_id, note)
    outcome = merge(accuracy, latency)
    config = dict(outcome.record_fields.get("config") or {})
    config["endpoint"] = {
        "base_url": redact_url(hosted.base_url),
        "model": hosted.model,
        "price_input_per_1m": hosted.price_input_per_1m,
        "price_output_per_1m": hosted.price_output_per_1m,
        "skipped_tasks": {task: kinds for task, kinds in sorted(skipped.items())},
    }
    config["notes"] = [*config.get("notes", []), *notes]
    outcome.record_fields["config"] = config
    outcome.record_fields["config_hash"] = _config_hash(config)
    outcome.notes.extend(notes)
    return outcome


def _config_hash(config: dict[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def generation_tasks(suite: str) -> tuple[Any, dict[str, list[str]]]:
    """``suite`` reduced to its generate_until tasks, and the others with their output types (what a chat API
    cannot score); the reduced suite is None when nothing is left."""
    from evals.accuracy.backends.openai_server import GENERATION_ONLY
    from evals.accuracy.suites import load_suite, output_types, task_manager

    loaded = load_suite(suite)
    types = output_types(loaded, task_manager(loaded))
    skipped = {task: sorted(kinds - GENERATION_ONLY) for task, kinds in types.items() if kinds - GENERATION_ONLY}
    kept = [task for task in loaded.tasks if task not in skipped]
    return (loaded.model_copy(update={"tasks": kept}) if kept else None), skipped


def _run_hosted_accuracy(
    suite: str, hosted: EndpointOptions, ref: CheckpointRef, limit: int | None, settings: Settings
) -> tuple[AccuracyResult | None, dict[str, list[str]]]:
    from evals.accuracy.runner import run_suite

    reduced, skipped = generation_tasks(suite)
    if reduced is None:
        return None, skipped
    progress.info("accuracy: %s suite %s via %s ...", ref.model_id, suite, HOSTED_ACCURACY_BACKEND)
    with _openai_api_key(hosted):
        result = run_suite(
            None,
            reduced,
            model_id=ref.model_id,
            revision=str(ref.revision),
            backend=HOSTED_ACCURACY_BACKEND,
            base_url=f"{hosted.base_url}/v1/chat/completions",
            served_model=hosted.model,
            limit=limit,
            settings=settings,
        )
    progress.info("accuracy: %s done in %.1fs (%d rows)", ref.model_id, result.duration_s, len(result.rows))
    return result, skipped


@contextlib.contextmanager
def _openai_api_key(hosted: EndpointOptions) -> Iterator[None]:
    """lm-eval's chat-completions model reads its bearer key from ``OPENAI_API_KEY`` (a model argument would be
    logged and recorded): set it for the run only, then restore what was there."""
    import os

    from evals.checkpoints.sources.endpoint import api_key

    key = api_key(hosted)
    before = os.environ.get("OPENAI_API_KEY")
    if key is not None:
        os.environ["OPENAI_API_KEY"] = key
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OPENAI_API_KEY", None)
        else:
            os.environ["OPENAI_API_KEY"] = before


def _price_hosted(latency: LatencyResult, hosted: EndpointOptions) -> None:
    """Cost from the price list instead of GPU-hours, in each ``latency`` row.

    ``gpu_hour_usd`` and ``gpu_count`` are null (nothing of ours serves it) and ``usd_per_1m_output_tokens`` is
    what 1M output tokens cost at the level's measured input/output mix: (input tokens x input price + output
    tokens x output price) / output tokens, the hosted counterpart of GPU-hours / tokens per hour (the list output
    price when the level served no tokens). Cost at the SLO for a hosted model is this price: per-token billing
    does not depend on the load (``evals.analysis.measures.levels_at_slo`` finds no GPU-hour price in such a row,
    and the decision's ``serving_cost.cost_per_1m`` reads a hosted side's ``usd_per_1m_output_tokens``). Its
    monthly cost is the traffic x this price, input tokens included (the latency rows hold no input price).
    """
    from evals.checkpoints.sources.endpoint import usd_per_1m_output_tokens

    tokens: dict[tuple[str, float, Any], list[int]] = {}
    for sample in latency.sample_rows:
        if not sample["ok"]:
            continue
        counted = tokens.setdefault((sample["load_type"], float(sample["load"]), sample["input_tokens"]), [0, 0])
        counted[0] += int(sample["prompt_tokens"] or 0)
        counted[1] += int(sample["output_tokens"] or 0)
    for level in latency.levels:
        row = level.row
        prompt, output = tokens.get((row["load_type"], float(row["load"]), row.get("input_tokens")), [0, 0])
        price = usd_per_1m_output_tokens(hosted, prompt, output)
        row.update(
            gpu_hour_usd=None,
            gpu_count=None,
            usd_per_1m_output_tokens=price if price is not None else hosted.price_output_per_1m,
        )
    latency.config["priced"] = {
        "usd_per_1m_input_tokens": hosted.price_input_per_1m,
        "usd_per_1m_output_tokens": hosted.price_output_per_1m,
    }
