"""What an lm-eval result says it evaluated: the (task, metric, filter) set and samples per task the gate expects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def lm_eval_expectations(raw: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """What lm-eval itself says it evaluated: samples per task, ``metric,filter`` keys per task and group.

    The normalized rows are checked against these, so a metric lost in normalization (e.g. a NaN value) shows
    up as a missing row and quarantines the run instead of silently shrinking it.
    """
    n_samples = {
        task: int(counts["effective"])
        for task, counts in (raw.get("n-samples") or {}).items()
        if isinstance(counts, Mapping) and counts.get("effective") is not None
    }
    # lm-eval counts a group's samples as the sum of its subtasks' (nested groups included).
    subtasks = raw.get("group_subtasks") or {}

    def group_total(group: str, seen: frozenset[str] = frozenset()) -> int | None:
        counts = [
            n_samples.get(child) if child not in subtasks else group_total(child, seen | {group})
            for child in subtasks.get(group, [])
            if child not in seen
        ]
        return sum(c for c in counts if c is not None) if counts and None not in counts else None

    for group in subtasks:
        if group not in n_samples and (total := group_total(group)) is not None:
            n_samples[group] = total
    metrics: dict[str, list[str]] = {}
    named = {**(raw.get("results") or {}), **(raw.get("groups") or {})}
    for task, values in named.items():
        # lm-eval's own keys, "metric,filter": a value lost for one filter must not hide behind another filter.
        names = sorted({key for key in values if "," in key and not key.split(",", 1)[0].endswith("_stderr")})
        if names:
            metrics[task] = names
    return n_samples, metrics
