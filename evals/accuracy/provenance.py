"""What the ``runs`` row records about an accuracy run: versions, task hashes, seeds, and the config hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.environment import package_versions
from evals.redact import redact_url

if TYPE_CHECKING:
    from evals.accuracy.backends import Backend, ModelTarget
    from evals.accuracy.suites import Suite


def _stable(value: Any) -> str:
    # Functions in task configs (custom_dataset, process_docs) would otherwise hash their memory address.
    if callable(value):
        return f"<function {getattr(value, '__qualname__', type(value).__name__)}>"
    return str(value)


def sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=_stable).encode()).hexdigest()


def chat_template_hash(checkpoint_dir: Path | None) -> str | None:
    """sha256 of the checkpoint's chat template (chat_template.jinja or tokenizer_config.json), None if none."""
    if checkpoint_dir is None:
        return None
    jinja = checkpoint_dir / "chat_template.jinja"
    if jinja.is_file():
        return hashlib.sha256(jinja.read_bytes()).hexdigest()
    config = checkpoint_dir / "tokenizer_config.json"
    if config.is_file():
        try:
            template = json.loads(config.read_text()).get("chat_template")
        except (ValueError, AttributeError):
            return None
        if template:
            return sha256_json(template)
    return None


def task_hashes(results: Mapping[str, Any]) -> dict[str, str]:
    """Per task, a hash of its resolved config and of every scored doc, prompt and target.

    Two runs with equal task hashes asked the model the same questions the same way; a changed dataset,
    prompt template or few-shot sample changes the hash.
    """
    hashes: dict[str, str] = {}
    samples = results.get("samples") or {}
    for task, config in sorted((results.get("configs") or {}).items()):
        digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=_stable).encode())
        for sample in samples.get(task, []):
            digest.update(
                f"{sample.get('doc_hash')}|{sample.get('prompt_hash')}|{sample.get('target_hash')}\n".encode()
            )
        hashes[task] = digest.hexdigest()
    return hashes


def config_hash(parts: Mapping[str, Any]) -> str:
    """sha256 over everything that can change a score (`record` passes those parts)."""
    return sha256_json(parts)


def record(
    results: dict[str, Any],
    *,
    suite: Suite,
    model_id: str,
    revision: str,
    backend: str,
    impl: Backend,
    target: ModelTarget,
    device: str | None,
    dtype: str | None,
    batch_size: int | str,
    limit: int | float | None,
    cache: Path | None,
    apply_chat_template: bool,
    model_calls: int,
) -> dict[str, Any]:
    """The runs row's provenance for one accuracy run; its config hash covers only what can change a score."""
    versions = package_versions()
    hashes = task_hashes(results)
    chat_hash = chat_template_hash(target.checkpoint_dir)
    lm_config = results.get("config") or {}
    scored = {
        "model_id": model_id,
        "revision": revision,
        "suite": suite.score_config() | {"limit": limit},
        "backend": backend,
        "served_model": target.served_model,
        "device": device,
        "dtype": dtype,
        "batch_size": batch_size,
        "apply_chat_template": apply_chat_template,
        "chat_template_sha256": chat_hash,
        "allow_remote_code": target.allow_remote_code,
        "task_hashes": hashes,
        "versions": {k: versions[k] for k in ("lm_eval", "transformers", "torch", "vllm")},
    }
    return {
        "suite": suite.name,
        "suite_version": suite.version,
        "suite_digest": suite.digest(),
        "tasks": suite.tasks,
        "model_id": model_id,
        "revision": revision,
        "backend": backend,
        "lm_eval_model": impl.lm_eval_model,
        "base_url": redact_url(target.base_url),
        "served_model": target.served_model,
        "device": device,
        "dtype": dtype,
        "batch_size": batch_size,
        "batch_sizes": list(lm_config.get("batch_sizes") or []),
        "limit": limit,
        "num_fewshot": suite.num_fewshot,
        "n_shot": dict(results.get("n-shot") or {}),
        "seeds": suite.seeds.model_dump(),
        "bootstrap_iters": suite.bootstrap_iters,
        "apply_chat_template": apply_chat_template,
        "fewshot_as_multiturn": suite.fewshot_as_multiturn,
        "system_instruction": suite.system_instruction,
        "gen_kwargs": dict(suite.gen_kwargs),
        "chat_template_sha256": chat_hash,
        "allow_remote_code": target.allow_remote_code,
        "task_versions": {k: str(v) for k, v in (results.get("versions") or {}).items()},
        "task_hashes": hashes,
        "versions": versions,
        "hardware": hardware(device),
        "request_cache": str(cache) if cache is not None else None,
        "model_calls": model_calls,
        "config_hash": config_hash(scored),
    }


def hardware(device: str | None) -> dict[str, Any]:
    """The runs table's hardware struct, detected as for latency runs; GPUs count only when lm-eval used CUDA."""
    from evals.environment import cpu_model, detect_gpus

    gpus = detect_gpus() if device and device.startswith("cuda") else {}
    return {"gpu_name": None, "gpu_count": 0, "gpu_driver": None, **gpus, "cpu": cpu_model()}
