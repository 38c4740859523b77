"""lm-eval's result dict -> ``accuracy`` rows (one per task/group x metric x filter), JSON-safe."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

ACCURACY_FIELDS = (
    "model_id",
    "revision",
    "suite",
    "task",
    "task_group",
    "task_version",
    "metric",
    "filter",
    "value",
    "stderr",
    "n_samples",
    "num_fewshot",
    "higher_is_better",
)


def split_metric_key(key: str) -> tuple[str, str]:
    """``"acc,none"`` -> ``("acc", "none")``; ``"exact_match,strict-match"`` -> ``("exact_match", "strict-match")``.

    A key without a filter part gets lm-eval's default filter name ``none``.
    """
    metric, sep, filter_name = key.partition(",")
    return metric, (filter_name if sep else "none")


def as_float(value: Any) -> float | None:
    """A finite float, or None for lm-eval's "N/A", NaN, inf, None and anything else non-numeric."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parents(results: Mapping[str, Any]) -> dict[str, str]:
    """Child task/group name -> the group that lists it (from ``group_subtasks``)."""
    mapping: dict[str, str] = {}
    for group, children in (results.get("group_subtasks") or {}).items():
        for child in children:
            mapping.setdefault(child, group)
    return mapping


def to_rows(results: Mapping[str, Any], *, model_id: str, revision: str, suite: str) -> list[dict[str, Any]]:
    """Rows for the ``accuracy`` table: tasks and groups both kept, subtasks carry their group in task_group.

    Values are lm-eval's own numbers unchanged (no rounding): the warehouse holds what simple_evaluate returned.
    """
    by_name: dict[str, Mapping[str, Any]] = dict(results.get("results") or {})
    for group, metrics in (results.get("groups") or {}).items():
        by_name.setdefault(group, metrics)
    parent_of = parents(results)
    rows: list[dict[str, Any]] = []
    for task in sorted(by_name):
        metrics = by_name[task]
        for key, raw in sorted(metrics.items()):
            if "," not in key:  # alias, name, sample_len, sample_count
                continue
            metric, filter_name = split_metric_key(key)
            if metric.endswith("_stderr"):
                continue
            value = as_float(raw)
            if value is None:
                log.warning("task %s: metric %s is %r, not a finite number; no row written", task, key, raw)
                continue
            rows.append(
                {
                    "model_id": model_id,
                    "revision": revision,
                    "suite": suite,
                    "task": task,
                    "task_group": parent_of.get(task),
                    "task_version": _version(results, task),
                    "metric": metric,
                    "filter": filter_name,
                    "value": value,
                    "stderr": as_float(metrics.get(f"{metric}_stderr,{filter_name}")),
                    "n_samples": _n_samples(results, task, metrics, key),
                    "num_fewshot": _int_or_none((results.get("n-shot") or {}).get(task)),
                    "higher_is_better": _higher_is_better(results, task, metric),
                }
            )
    return rows


def _version(results: Mapping[str, Any], task: str) -> str | None:
    version = (results.get("versions") or {}).get(task)
    if version is None:
        return None
    return str(version)


def _n_samples(results: Mapping[str, Any], task: str, metrics: Mapping[str, Any], key: str) -> int | None:
    effective = ((results.get("n-samples") or {}).get(task) or {}).get("effective")
    if effective is not None:
        return int(effective)
    counts = metrics.get("sample_count")
    if isinstance(counts, Mapping) and counts.get(key) is not None:
        return int(counts[key])
    return _int_or_none(metrics.get("sample_len"))


def _higher_is_better(results: Mapping[str, Any], task: str, metric: str) -> bool | None:
    value = ((results.get("higher_is_better") or {}).get(task) or {}).get(metric)
    return bool(value) if value is not None else None


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def sample_rows(results: Mapping[str, Any], *, model_id: str, revision: str, suite: str) -> list[dict[str, Any]]:
    """Rows for the ``accuracy_samples`` table: one per (task, document, metric, filter) lm-eval logged.

    ``results["samples"]`` holds one entry per (document, filter) with the document's score under each metric
    name. Only scores that are plain numbers become rows: corpus-level metrics (bleu, ...) log tuples that mean
    nothing for one document. Texts are cut to ``SAMPLE_TEXT_CHARS`` — enough to read what changed.
    """
    from evals.schemas import SAMPLE_TEXT_CHARS

    rows: list[dict[str, Any]] = []
    for task in sorted(results.get("samples") or {}):
        aggregations = _aggregations(results, task)
        for sample in results["samples"][task]:
            filter_name = str(sample.get("filter", "none"))
            for metric in sample.get("metrics") or []:
                value = _score(sample.get(metric))
                if value is None:
                    continue
                rows.append(
                    {
                        "model_id": model_id,
                        "revision": revision,
                        "suite": suite,
                        "task": task,
                        "doc_id": int(sample["doc_id"]),
                        "doc_hash": str(sample["doc_hash"]),
                        "prompt_hash": sample.get("prompt_hash"),
                        "target_hash": sample.get("target_hash"),
                        "metric": str(metric),
                        "filter": filter_name,
                        "aggregation": aggregations.get(str(metric)),
                        "value": value,
                        "response": _text(sample.get("filtered_resps"), SAMPLE_TEXT_CHARS),
                        "target": _text(sample.get("target"), SAMPLE_TEXT_CHARS),
                    }
                )
    return rows


def sample_counts(results: Mapping[str, Any]) -> dict[tuple[str, str, str], int]:
    """(task, metric, filter) -> documents lm-eval logged a numeric score for (the gate's reference count)."""
    counts: dict[tuple[str, str, str], int] = {}
    for task, samples in (results.get("samples") or {}).items():
        for sample in samples:
            for metric in sample.get("metrics") or []:
                if _score(sample.get(metric)) is not None:
                    key = (str(task), str(metric), str(sample.get("filter", "none")))
                    counts[key] = counts.get(key, 0) + 1
    return counts


def _aggregations(results: Mapping[str, Any], task: str) -> dict[str, str]:
    """metric -> lm-eval's aggregation name for it in ``task``'s config (a function's name when not a string)."""
    config = (results.get("configs") or {}).get(task) or {}
    out: dict[str, str] = {}
    for entry in config.get("metric_list") or []:
        if isinstance(entry, Mapping) and entry.get("metric") is not None:
            aggregation = entry.get("aggregation", "mean")
            name = aggregation if isinstance(aggregation, str) else getattr(aggregation, "__name__", str(aggregation))
            out[str(entry["metric"])] = name
    return out


def _score(value: Any) -> float | None:
    # lm-eval scores a document as bool, int or float; exact 0/1 stay exact so paired differences are exact too.
    if isinstance(value, bool):
        return float(value)
    return as_float(value)


def _text(value: Any, limit: int) -> str | None:
    """A response or target as short text: a generation's text, or a multiple-choice answer's index.

    Multiple choice logs one (loglikelihood, is_greedy) pair per choice: the model's answer is the choice with
    the highest loglikelihood, written ``choice N`` (lm-eval's target is then the right choice's index).
    """
    while isinstance(value, list | tuple) and len(value) == 1 and not _is_loglikelihood(value[0]):
        value = value[0]
    if value is None:
        return None
    if isinstance(value, list | tuple) and value and all(_is_loglikelihood(v) for v in value):
        scores = [float(v[0]) for v in value]
        return f"choice {scores.index(max(scores))}"
    text = value if isinstance(value, str) else repr(value)
    return text[:limit]


def _is_loglikelihood(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and isinstance(value[0], int | float)
        and not isinstance(value[0], bool)
        and isinstance(value[1], bool)
    )
