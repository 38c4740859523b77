"""``local-completions`` / ``local-chat-completions``: lm-eval against an OpenAI-compatible server by URL.

Which task kinds a server supports:
- generate_until: every OpenAI-compatible server (``/v1/completions`` or ``/v1/chat/completions``).
- multiple_choice / loglikelihood*: only ``/v1/completions`` servers that return *prompt* logprobs with
  ``echo=true`` (vLLM does; ``transformers serve`` does not). Chat completions never do.
The completions backend probes the server once and the runner refuses an impossible suite before any request.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from evals.accuracy.backends.base import Backend, ModelTarget
from evals.errors import ConfigError, ServerNotReady

log = logging.getLogger(__name__)

GENERATION_ONLY = frozenset({"generate_until"})
PROBE_PROMPT = "The capital of France is"


def api_root(base_url: str) -> str:
    """``http://h:p``, ``http://h:p/v1`` or a full endpoint URL -> ``http://h:p/v1``."""
    root = base_url.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if root.endswith(suffix):
            root = root[: -len(suffix)]
    return root if root.endswith("/v1") else f"{root}/v1"


def served_model(target: ModelTarget) -> str:
    if target.served_model:
        return target.served_model
    if target.checkpoint_dir is not None:
        return str(target.checkpoint_dir)
    raise ConfigError("a server backend needs the served model name (--served-model) or the checkpoint folder")


def probe_prompt_logprobs(base_url: str, model: str, *, timeout_s: float = 30.0) -> bool:
    """Whether ``/v1/completions`` returns log-probabilities of the prompt tokens (``echo`` + ``logprobs``).

    A refusal (4xx) or an answer without them means no; a server that cannot be reached is a TransientError.
    """
    import httpx

    payload = {"model": model, "prompt": PROBE_PROMPT, "max_tokens": 1, "temperature": 0.0, "logprobs": 1, "echo": True}
    try:
        response = httpx.post(f"{api_root(base_url)}/completions", json=payload, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ServerNotReady(f"model server {base_url} did not answer the logprobs probe: {exc}") from exc
    if response.status_code >= 500:
        raise ServerNotReady(f"model server {base_url} failed the logprobs probe: HTTP {response.status_code}")
    if response.status_code >= 400:
        log.info("server %s refused echo+logprobs (HTTP %s): no prompt logprobs", base_url, response.status_code)
        return False
    try:
        logprobs = response.json()["choices"][0].get("logprobs") or {}
        token_logprobs = logprobs.get("token_logprobs") or []
    except (ValueError, KeyError, IndexError, AttributeError, TypeError):
        return False
    # With echo the prompt's tokens come first (the very first one has no logprob): more than one entry.
    return sum(1 for lp in token_logprobs if lp is not None) >= 2


class CompletionsBackend(Backend):
    name: ClassVar[str] = "local-completions"
    lm_eval_model: ClassVar[str] = "local-completions"
    needs_checkpoint: ClassVar[bool] = False
    needs_url: ClassVar[bool] = True

    def model_args(self, target: ModelTarget, *, batch_size: int | str, seed: int) -> dict[str, Any]:
        assert target.base_url is not None
        settings = target.settings
        model = served_model(target)
        return {
            "model": model,
            "base_url": f"{api_root(target.base_url)}/completions",
            # Loglikelihood needs a local tokenizer to split context from continuation.
            "tokenizer": str(target.checkpoint_dir) if target.checkpoint_dir else model,
            "tokenizer_backend": "huggingface",
            "tokenized_requests": False,
            "num_concurrent": settings.accuracy_server_concurrency,
            "timeout": int(settings.accuracy_server_timeout_s),
            "max_retries": 3,
            "seed": seed,
            "trust_remote_code": target.allow_remote_code,
        }

    def supported_output_types(self, target: ModelTarget) -> frozenset[str] | None:
        assert target.base_url is not None
        timeout = min(30.0, target.settings.accuracy_server_timeout_s)
        return (
            None
            if probe_prompt_logprobs(target.base_url, served_model(target), timeout_s=timeout)
            else (GENERATION_ONLY)
        )

    def describe_support(self) -> str:
        return "generate_until always; multiple-choice/loglikelihood only if the server returns prompt logprobs"


class ChatCompletionsBackend(Backend):
    name: ClassVar[str] = "local-chat-completions"
    lm_eval_model: ClassVar[str] = "local-chat-completions"
    needs_checkpoint: ClassVar[bool] = False
    needs_url: ClassVar[bool] = True
    forces_chat_template: ClassVar[bool] = True  # the server applies the chat template, always

    def model_args(self, target: ModelTarget, *, batch_size: int | str, seed: int) -> dict[str, Any]:
        assert target.base_url is not None
        settings = target.settings
        return {
            "model": served_model(target),
            "base_url": f"{api_root(target.base_url)}/chat/completions",
            "tokenizer_backend": "none",
            "num_concurrent": settings.accuracy_server_concurrency,
            "timeout": int(settings.accuracy_server_timeout_s),
            "max_retries": 3,
            "seed": seed,
        }

    def supported_output_types(self, target: ModelTarget) -> frozenset[str] | None:
        return GENERATION_ONLY

    def describe_support(self) -> str:
        return "generate_until only (chat completions never return prompt logprobs)"
