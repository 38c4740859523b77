"""The ``vllm`` backend: vLLM in-process on a GPU worker (needs the ``gpu`` extra)."""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

from evals.accuracy.backends.base import Backend, ModelTarget
from evals.errors import ConfigError


class VLLMBackend(Backend):
    name: ClassVar[str] = "vllm"
    lm_eval_model: ClassVar[str] = "vllm"

    def check_target(self, target: ModelTarget) -> None:
        super().check_target(target)
        if importlib.util.find_spec("vllm") is None:
            raise ConfigError("backend 'vllm' needs vLLM: install the gpu extra (pip install 'checkpoint-evals[gpu]')")

    def dtype(self, target: ModelTarget) -> str:
        configured = target.settings.accuracy_dtype
        return "bfloat16" if configured == "auto" else configured

    def model_args(self, target: ModelTarget, *, batch_size: int | str, seed: int) -> dict[str, Any]:
        assert target.checkpoint_dir is not None
        settings = target.settings
        args: dict[str, Any] = {
            "pretrained": str(target.checkpoint_dir),
            "dtype": self.dtype(target),
            "trust_remote_code": target.allow_remote_code,
            "gpu_memory_utilization": settings.accuracy_vllm_gpu_memory_utilization,
            "tensor_parallel_size": settings.accuracy_vllm_tensor_parallel_size,
            "seed": seed,
        }
        if settings.accuracy_vllm_max_model_len is not None:
            args["max_model_len"] = settings.accuracy_vllm_max_model_len
        return args
