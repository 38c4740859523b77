"""The ``hf`` backend: transformers in-process on CPU or GPU (lm-eval's HFLM)."""

from __future__ import annotations

from typing import Any, ClassVar

from evals.accuracy.backends.base import Backend, ModelTarget


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class HFBackend(Backend):
    name: ClassVar[str] = "hf"
    lm_eval_model: ClassVar[str] = "hf"

    def device(self, target: ModelTarget) -> str:
        return target.settings.accuracy_device or default_device()

    def dtype(self, target: ModelTarget) -> str:
        configured = target.settings.accuracy_dtype
        if configured != "auto":
            return configured
        # bfloat16 halves memory on GPUs; on CPU it is slow and changes scores, so CPU runs stay in float32.
        return "float32" if self.device(target).startswith("cpu") else "bfloat16"

    def model_args(self, target: ModelTarget, *, batch_size: int | str, seed: int) -> dict[str, Any]:
        assert target.checkpoint_dir is not None
        return {
            "pretrained": str(target.checkpoint_dir),
            "dtype": self.dtype(target),
            "trust_remote_code": target.allow_remote_code,
        }
