"""What a run was asked to produce (samples per task, metrics, requests per load level): the gate's references."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def level_key(load_type: str, load: float) -> str:
    """How a latency load level is named in checks and messages, e.g. ``concurrency=8``."""
    return f"{load_type}={float(load):g}"


def sample_key(task: str, metric: str, filter_: str) -> str:
    """How a (task, metric, filter) of ``accuracy_samples`` is named in checks, e.g. ``arc_easy/acc,none``."""
    return f"{task}/{metric},{filter_}"


@dataclass(frozen=True)
class Expected:
    """References the data cannot carry itself; a check that needs an empty field is not made.

    - ``n_samples``: task -> number of samples the suite asked lm-eval to evaluate (after any limit).
    - ``metrics``: task -> ``"metric,filter"`` keys (lm-eval's own) every such task must report, one row each.
    - ``requests``: (load_type, load) -> requests the load generator issued at that level.
    - ``samples``: (task, metric, filter) -> per-document scores lm-eval logged (``accuracy_samples`` rows).
    """

    n_samples: Mapping[str, int] = field(default_factory=dict)
    metrics: Mapping[str, Sequence[str]] = field(default_factory=dict)
    requests: Mapping[tuple[str, float], int] = field(default_factory=dict)
    samples: Mapping[tuple[str, str, str], int] = field(default_factory=dict)

    @property
    def sample_keys(self) -> dict[str, int]:
        """``samples`` keyed as checks name them: ``task/metric,filter``."""
        return {sample_key(*key): n for key, n in self.samples.items()}

    @property
    def tasks(self) -> list[str]:
        return sorted(set(self.n_samples) | set(self.metrics))

    @property
    def levels(self) -> dict[str, int]:
        return {level_key(load_type, load): n for (load_type, load), n in self.requests.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "n_samples": dict(self.n_samples),
            "metrics": {task: list(names) for task, names in self.metrics.items()},
            "requests": [
                {"load_type": load_type, "load": float(load), "requests": n}
                for (load_type, load), n in self.requests.items()
            ],
            "samples": [
                {"task": task, "metric": metric, "filter": filter_, "rows": n}
                for (task, metric, filter_), n in sorted(self.samples.items())
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Expected:
        if not data:
            return cls()
        return cls(
            n_samples={str(k): int(v) for k, v in (data.get("n_samples") or {}).items()},
            metrics={str(k): [str(m) for m in v] for k, v in (data.get("metrics") or {}).items()},
            requests={
                (str(item["load_type"]), float(item["load"])): int(item["requests"])
                for item in data.get("requests") or []
            },
            samples={
                (str(item["task"]), str(item["metric"]), str(item["filter"])): int(item["rows"])
                for item in data.get("samples") or []
            },
        )
