"""The serving configuration (``EVALS_SERVING``): who serves production now, the traffic, the decision policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evals.analysis.policy import Costing, Policy, Traffic
from evals.errors import ConfigError


class ServingConfig(BaseModel):
    """``champion``: a checkpoint ref (``package:smollm2``, ``hf:org/name@sha``) or a hosted ``endpoint:NAME``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    champion: str = Field(min_length=1)
    traffic: Traffic
    policy: Policy
    cost: Costing = Field(default_factory=lambda: Costing(hours_per_month=730.0, fixed_monthly_usd=0.0, prices={}))
    path: str = Field("<serving config>", exclude=True, description="Where it was read from (messages only).")

    @field_validator("champion")
    @classmethod
    def _ref(cls, value: str) -> str:
        from evals.checkpoints.ref import CheckpointRef

        CheckpointRef.parse(value)  # InvalidRef (a ConfigError, a ValueError): pydantic names the field
        return value

    def price_for(self, model_id: str, ref: str | None = None) -> Any:
        """The configured price of a model (by ref, model id or the champion's name), or None."""
        for key in (ref, model_id):
            if key and key in self.cost.prices:
                return self.cost.prices[key]
        return None


def load_serving(path: str | Path | None = None) -> ServingConfig | None:
    """The serving configuration at ``path`` (default ``EVALS_SERVING``); None when none is configured.

    A bad file is a :class:`ConfigError` naming the file and the field (``policy.non_inferiority.smoke: ...``).
    The policy may be inline or a path to its own YAML (relative to this file).
    """
    from evals.settings import get_settings

    chosen = path if path is not None else get_settings().serving
    if chosen is None or str(chosen) == "":
        return None
    file = Path(chosen).expanduser()
    data = _read_yaml(file)
    if not isinstance(data, dict):
        raise ConfigError(f"serving config {file}: expected a mapping with champion, traffic, policy")
    policy = data.get("policy")
    if isinstance(policy, str):
        policy_file = (file.parent / policy).expanduser() if not Path(policy).is_absolute() else Path(policy)
        policy_data = _read_yaml(policy_file)
        try:
            data = {**data, "policy": Policy.model_validate(policy_data)}
        except ValidationError as exc:
            raise ConfigError(f"decision policy {policy_file}: {_errors(exc)}") from exc
    try:
        return ServingConfig.model_validate({**data, "path": str(file)})
    except ValidationError as exc:
        raise ConfigError(f"serving config {file}: {_errors(exc)}") from exc


def _read_yaml(file: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(file.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read serving config {file}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"serving config {file} is not valid YAML: {exc}") from exc


def _errors(exc: ValidationError) -> str:
    """Each problem as ``field.path: message`` (``policy.non_inferiority.smoke: ...``), joined by '; '."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" + (" (unknown field)" if error["type"] == "extra_forbidden" else ""))
    return "; ".join(parts)
