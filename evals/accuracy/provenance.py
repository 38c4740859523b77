"""What the ``runs`` row records about an accuracy run: versions, task hashes, seeds, and the config hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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
    """sha256 over everything that can change a score (the caller passes those parts; see runner)."""
    return sha256_json(parts)
