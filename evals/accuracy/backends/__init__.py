"""Accuracy backends by name: a lazy registry (nothing heavy is imported until a backend is used)."""

from __future__ import annotations

import pkgutil

from evals.accuracy.backends.base import Backend, ModelTarget
from evals.errors import ConfigError

# name -> "module:Class". Listing or validating names never imports torch, vllm or lm_eval.
BACKENDS: dict[str, str] = {
    "hf": "evals.accuracy.backends.hf:HFBackend",
    "vllm": "evals.accuracy.backends.vllm:VLLMBackend",
    "local-completions": "evals.accuracy.backends.openai_server:CompletionsBackend",
    "local-chat-completions": "evals.accuracy.backends.openai_server:ChatCompletionsBackend",
}


def available_backends() -> list[str]:
    return sorted(BACKENDS)


def get_backend(name: str) -> Backend:
    """An instance of the backend called ``name``; an unknown name fails with the list of known ones."""
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigError(f"unknown accuracy backend {name!r}; known backends: {', '.join(available_backends())}")
    backend: Backend = pkgutil.resolve_name(target)()
    return backend


__all__ = ["BACKENDS", "Backend", "ModelTarget", "available_backends", "get_backend"]
