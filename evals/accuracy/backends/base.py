"""The backend contract: what a backend must say about the model it evaluates and the requests it can serve."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from evals.errors import ConfigError

if TYPE_CHECKING:
    from evals.settings import Settings


@dataclass(frozen=True)
class ModelTarget:
    """What to evaluate: a local checkpoint folder, a server URL, or both (a server's tokenizer lives locally)."""

    checkpoint_dir: Path | None
    base_url: str | None
    served_model: str | None
    allow_remote_code: bool
    settings: Settings


class Backend(abc.ABC):
    """One way of running lm-eval requests. Subclasses are listed in ``evals.accuracy.backends.BACKENDS``."""

    name: ClassVar[str]
    lm_eval_model: ClassVar[str]  # the name lm-eval's model registry knows
    needs_checkpoint: ClassVar[bool] = True
    needs_url: ClassVar[bool] = False
    forces_chat_template: ClassVar[bool] = False

    def check_target(self, target: ModelTarget) -> None:
        if self.needs_checkpoint and target.checkpoint_dir is None:
            raise ConfigError(f"backend {self.name!r} needs a checkpoint folder")
        if self.needs_url and not target.base_url:
            raise ConfigError(f"backend {self.name!r} needs --base-url (an OpenAI-compatible server)")

    def device(self, target: ModelTarget) -> str | None:
        """The device handed to simple_evaluate (None where the backend decides itself)."""
        return None

    def dtype(self, target: ModelTarget) -> str | None:
        """The weights dtype the model runs in, recorded in provenance (None: the server decides)."""
        return None

    @abc.abstractmethod
    def model_args(self, target: ModelTarget, *, batch_size: int | str, seed: int) -> dict[str, Any]:
        """lm-eval ``model_args`` for this target."""

    def supported_output_types(self, target: ModelTarget) -> frozenset[str] | None:
        """lm-eval output types this target can serve; None means all of them."""
        return None

    def describe_support(self) -> str:
        """One line for error messages: which task kinds this backend supports."""
        return "all task kinds"
