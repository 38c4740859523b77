"""What one checkpoint's evaluation produced: rows per table, the run record fields they imply, what to expect."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.accuracy.runner import AccuracyResult
    from evals.latency.runner import LatencyResult
    from evals.validation import Expected


@dataclass
class Outcome:
    """Rows per table, the run record fields they imply, and what validation should expect of them."""

    tables: dict[str, list[dict[str, Any]]]
    record_fields: dict[str, Any]
    expected: Expected
    notes: list[str] = field(default_factory=list)
    accuracy: AccuracyResult | None = None
    latency: LatencyResult | None = None


def merge(accuracy: AccuracyResult | None, latency: LatencyResult | None) -> Outcome:
    """One run's tables, ``runs`` fields (provenance of both halves) and validation references."""
    from evals.accuracy.expected import lm_eval_expectations
    from evals.validation import Expected

    tables: dict[str, list[dict[str, Any]]] = {}
    fields: dict[str, Any] = {}
    config: dict[str, Any] = {}
    n_samples: dict[str, int] = {}
    metrics: dict[str, list[str]] = {}
    requests: dict[tuple[str, float], int] = {}
    samples: dict[tuple[str, str, str], int] = {}
    if accuracy is not None:
        tables.update(accuracy.tables())
        fields.update(accuracy.record_fields())
        config["accuracy"] = accuracy.provenance
        n_samples, metrics = lm_eval_expectations(accuracy.raw_results)
        samples = dict(accuracy.sample_counts)
    if latency is not None:
        tables.update(latency.tables())
        fields.setdefault("versions", latency.versions)
        fields["hardware"] = latency.hardware
        fields["backend"] = "+".join(b for b in (fields.get("backend"), latency.backend) if b)
        config["latency"] = latency.config
        requests = latency.issued_requests()
        if accuracy is None:
            fields["started_at"] = latency.started_at
    fields["config"] = config
    fields["config_hash"] = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    notes = list(latency.notes) if latency is not None else []
    expected = Expected(n_samples=n_samples, metrics=metrics, requests=requests, samples=samples)
    record_fields = {k: v for k, v in fields.items() if k in _RECORD_FIELDS}
    return Outcome(tables, record_fields, expected, notes, accuracy=accuracy, latency=latency)


# suite/suite_version are keys of the run id: they come from the plan, never from the evaluation's result.
_RECORD_FIELDS = {"backend", "dtype", "versions", "hardware", "config_hash", "config", "started_at"}
