"""Run one suite on one checkpoint with lm-eval's ``simple_evaluate``: checks, resume cache, OOM, provenance."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.accuracy import normalize, provenance
from evals.accuracy.backends import Backend, ModelTarget, get_backend
from evals.accuracy.preflight import BrokenCheckpoint, check_checkpoint
from evals.accuracy.progress import ProgressHook, RequestCallback, install, quiet_bars, use_log_lines
from evals.accuracy.suites import Suite, load_suite, output_types, task_manager, validate_tasks
from evals.environment import package_versions
from evals.errors import ConfigError, TerminalError, TransientError

if TYPE_CHECKING:
    from evals.settings import Settings

log = logging.getLogger(__name__)

_OOM_MARKERS = ("out of memory", "outofmemoryerror", "no available memory for the cache blocks")


class AccuracyOOM(TransientError):
    """The accelerator ran out of memory; the retry of the same run uses ``next_batch_size``."""

    def __init__(self, message: str, next_batch_size: int) -> None:
        self.next_batch_size = next_batch_size
        super().__init__(message)


@dataclass
class AccuracyResult:
    """What one suite run produced: ``accuracy`` and ``accuracy_samples`` rows, provenance, lm-eval's own dict.

    ``sample_counts`` is lm-eval's own count of logged scores per (task, metric, filter): the validation gate's
    reference for the number of ``accuracy_samples`` rows (``raw_results`` drops the samples unless asked).
    """

    rows: list[dict[str, Any]]
    provenance: dict[str, Any]
    raw_results: dict[str, Any] = field(repr=False)
    model_calls: int = 0
    duration_s: float = 0.0
    sample_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    sample_counts: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The frames for ``Warehouse.write_run`` (run_id and eval_date are filled by the warehouse)."""
        tables = {"accuracy": self.rows}
        if self.sample_rows:
            tables["accuracy_samples"] = self.sample_rows
        return tables

    @property
    def config_hash(self) -> str:
        return str(self.provenance["config_hash"])

    def record_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``RunRecord`` (suite, backend, dtype, versions, hardware, config_hash, config)."""
        p = self.provenance
        return {
            "suite": p["suite"],
            "suite_version": p["suite_version"],
            "backend": p["backend"],
            "dtype": p["dtype"],
            "versions": p["versions"],
            "hardware": p["hardware"],
            "config_hash": p["config_hash"],
            "config": p,
        }


def request_cache_path(settings: Settings, *, revision: str, suite: Suite, backend: str, dtype: str | None) -> Path:
    """Where lm-eval caches answered requests for this (checkpoint SHA, suite version, lm-eval version, backend).

    Batch size is not part of the key, so a retry after an OOM with a smaller batch reuses what finished.
    """
    versions = package_versions()
    parts = [
        _safe(revision),
        _safe(suite.ref),
        f"lm_eval-{versions['lm_eval']}",
        _safe(f"{backend}-{dtype or 'server'}"),
    ]
    return Path(settings.cache_dir).expanduser().resolve().joinpath("lm_eval_requests", *parts)


def run_suite(
    checkpoint_dir: Path | str | None,
    suite: Suite | str,
    *,
    model_id: str,
    revision: str,
    backend: str = "hf",
    base_url: str | None = None,
    served_model: str | None = None,
    limit: int | float | None = None,
    allow_remote_code: bool = False,
    use_cache: bool = True,
    settings: Settings | None = None,
    on_request: RequestCallback | None = None,
    keep_samples: bool = False,
) -> AccuracyResult:
    """Evaluate ``suite`` on a checkpoint folder (hf, vllm) or a served model (local-completions, ...).

    ``revision`` is the checkpoint's commit SHA (or content hash): it keys the request cache, so a run killed
    half-way and started again only asks the model what it had not answered. ``allow_remote_code`` is decided
    by the checkpoints module (allow-list); it is False for everything else.

    Raises ConfigError (unknown suite/task/backend, a suite the backend cannot serve), BrokenCheckpoint or
    CheckpointRejected (terminal), AccuracyOOM (transient: the retry halves the batch size, once).
    """
    from evals.settings import get_settings

    started = time.monotonic()
    settings = settings or get_settings()
    suite = load_suite(suite) if isinstance(suite, str) else suite
    impl = get_backend(backend)
    directory = Path(checkpoint_dir).expanduser().resolve() if checkpoint_dir is not None else None
    target = ModelTarget(directory, base_url, served_model, allow_remote_code, settings)
    impl.check_target(target)
    if directory is not None and impl.needs_checkpoint:
        check_checkpoint(directory)

    manager = task_manager(suite)
    validate_tasks(suite, manager)
    _refuse_unsupported(impl, target, suite, manager)

    device, dtype = impl.device(target), impl.dtype(target)
    cache = request_cache_path(settings, revision=revision, suite=suite, backend=backend, dtype=dtype)
    batch_size = _batch_size(settings, suite, cache)
    seed = suite.seeds.random
    model_args = impl.model_args(target, batch_size=batch_size, seed=seed)
    log_lines = use_log_lines(settings.accuracy_progress)
    hook = ProgressHook(None, every_s=settings.accuracy_progress_every_s, log_lines=log_lines, on_request=on_request)
    effective_limit = limit if limit is not None else suite.limit
    apply_chat_template = suite.apply_chat_template or impl.forces_chat_template
    log.info(
        "accuracy: %s on %s (%s, backend %s, device %s, dtype %s, batch %s, limit %s)",
        suite.ref,
        model_id,
        revision[:12],
        backend,
        device,
        dtype,
        batch_size,
        effective_limit,
    )

    with quiet_bars(log_lines):
        try:
            lm = _make_lm(
                impl,
                model_args,
                batch_size=batch_size,
                max_batch_size=suite.max_batch_size,
                device=device,
                directory=directory,
            )
            install(lm, hook)
            results = _evaluate(
                lm,
                suite,
                manager,
                limit=effective_limit,
                batch_size=batch_size,
                device=device,
                cache=cache if use_cache else None,
                apply_chat_template=apply_chat_template,
            )
        except Exception as exc:
            _raise_classified(exc, batch_size=batch_size, cache=cache, suite=suite)
            raise
        finally:
            _close_cache(hook)

    rows = normalize.to_rows(results, model_id=model_id, revision=revision, suite=suite.name)
    samples = normalize.sample_rows(results, model_id=model_id, revision=revision, suite=suite.name)
    counts = normalize.sample_counts(results)
    prov = provenance.record(
        results,
        suite=suite,
        model_id=model_id,
        revision=revision,
        backend=backend,
        impl=impl,
        target=target,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        limit=effective_limit,
        cache=cache if use_cache else None,
        apply_chat_template=apply_chat_template,
        model_calls=hook.model_calls,
    )
    if not keep_samples:
        results.pop("samples", None)
    duration = time.monotonic() - started
    log.info(
        "accuracy: %s done in %.1f s, %d rows, %d model requests answered",
        suite.ref,
        duration,
        len(rows),
        hook.model_calls,
    )
    return AccuracyResult(rows, prov, results, hook.model_calls, duration, samples, counts)


def _refuse_unsupported(impl: Backend, target: ModelTarget, suite: Suite, manager: Any) -> None:
    supported = impl.supported_output_types(target)
    if supported is None:
        return
    types = output_types(suite, manager)
    blocked = {task: sorted(kinds - supported) for task, kinds in types.items() if kinds - supported}
    if blocked:
        listing = "; ".join(f"{task}: {', '.join(kinds)}" for task, kinds in sorted(blocked.items()))
        raise ConfigError(
            f"backend {impl.name!r} at {target.base_url} cannot run suite {suite.ref}: {listing}. "
            f"This server supports {impl.describe_support()}. Multiple-choice tasks need prompt logprobs "
            "(vLLM's server returns them, `transformers serve` does not): use --backend hf/vllm on the "
            "checkpoint, or a generation-only suite."
        )


def _batch_size(settings: Settings, suite: Suite, cache: Path) -> int | str:
    configured: int | str = settings.accuracy_batch_size or suite.batch_size
    marker = _oom_marker(cache)
    if marker.is_file():
        reduced = json.loads(marker.read_text())["batch_size"]
        log.warning("an earlier attempt ran out of memory: batch size %s instead of %s", reduced, configured)
        return int(reduced)
    return configured


def _oom_marker(cache: Path) -> Path:
    return cache / "oom.json"


def _make_lm(
    impl: Backend,
    model_args: dict[str, Any],
    *,
    batch_size: int | str,
    max_batch_size: int | None,
    device: str | None,
    directory: Path | None,
) -> Any:
    import lm_eval.api.registry

    extra = {"batch_size": batch_size, "max_batch_size": max_batch_size, "device": device}
    try:
        return lm_eval.api.registry.get_model(impl.lm_eval_model).create_from_arg_obj(model_args, extra)
    except Exception as exc:
        if _is_oom(exc):
            raise
        broken = isinstance(exc, (OSError, ValueError, RuntimeError, KeyError)) or type(exc).__name__ == (
            "SafetensorError"
        )
        if directory is not None and broken:
            raise BrokenCheckpoint(directory, f"cannot be loaded: {type(exc).__name__}: {exc}") from exc
        raise


def _evaluate(
    lm: Any,
    suite: Suite,
    manager: Any,
    *,
    limit: int | float | None,
    batch_size: int | str,
    device: str | None,
    cache: Path | None,
    apply_chat_template: bool,
) -> dict[str, Any]:
    from lm_eval import simple_evaluate

    seeds = suite.seeds
    results = simple_evaluate(
        model=lm,
        tasks=list(suite.tasks),
        num_fewshot=suite.num_fewshot,
        batch_size=batch_size,
        device=device,
        use_cache=str(cache / "requests") if cache is not None else None,
        limit=limit,
        bootstrap_iters=suite.bootstrap_iters,
        log_samples=True,  # per-document scores: accuracy_samples, paired comparisons, task hashes in provenance
        system_instruction=suite.system_instruction,
        apply_chat_template=apply_chat_template,
        fewshot_as_multiturn=suite.fewshot_as_multiturn,
        gen_kwargs=dict(suite.gen_kwargs) or None,
        task_manager=manager,
        random_seed=seeds.random,
        numpy_random_seed=seeds.numpy,
        torch_random_seed=seeds.torch,
        fewshot_random_seed=seeds.fewshot,
    )
    if results is None:  # only non-zero ranks of a distributed run get None
        raise TerminalError("lm-eval returned no results (not rank 0?)")
    return dict(results)


def _is_oom(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(marker in text for marker in _OOM_MARKERS)


def _raise_classified(exc: Exception, *, batch_size: int | str, cache: Path, suite: Suite) -> None:
    """Turn an out-of-memory error into AccuracyOOM (once) or a TerminalError; leave anything else alone."""
    if not _is_oom(exc):
        return
    marker = _oom_marker(cache)
    if marker.is_file() or batch_size == 1:
        raise TerminalError(f"out of memory at batch size {batch_size}, already the reduced size: {exc}") from exc
    next_size = max(1, (suite.max_batch_size or 64) // 4) if batch_size == "auto" else max(1, int(batch_size) // 2)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"batch_size": next_size, "after": str(batch_size)}))
    raise AccuracyOOM(
        f"out of memory at batch size {batch_size}; the retry uses {next_size}: {exc}", next_size
    ) from exc


def _close_cache(hook: ProgressHook) -> None:
    # lm-eval never closes its SqliteDict; closing flushes it so a crash right after loses nothing.
    dbdict = hook.dbdict
    if dbdict is not None:
        try:
            dbdict.commit()
            dbdict.close()
        except Exception:  # a failing close must not hide the evaluation's own error
            log.exception("closing the request cache failed")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@+-]", "_", text)[:120]
