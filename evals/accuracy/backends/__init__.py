"""Accuracy backends by name: a lazy registry (nothing heavy is imported until a backend is used)."""

from __future__ import annotations

from evals.accuracy.backends.base import Backend, ModelTarget
from evals.registry import LazyRegistry

# Listing or validating names never imports torch, vllm or lm_eval.
BACKENDS: LazyRegistry[type[Backend]] = LazyRegistry(
    "accuracy backend",
    {
        "hf": "evals.accuracy.backends.hf:HFBackend",
        "vllm": "evals.accuracy.backends.vllm:VLLMBackend",
        "local-completions": "evals.accuracy.backends.openai_server:CompletionsBackend",
        "local-chat-completions": "evals.accuracy.backends.openai_server:ChatCompletionsBackend",
    },
)


def available_backends() -> list[str]:
    return BACKENDS.names()


def get_backend(name: str) -> Backend:
    """An instance of the backend called ``name``; an unknown name fails with the list of known ones."""
    return BACKENDS[name]()


__all__ = ["BACKENDS", "Backend", "ModelTarget", "available_backends", "get_backend"]
