"""A level run as K independent trials: the pooled level, and how much each headline statistic moved between trials.

One run of a level sees one stretch of the machine: a neighbour, a clock change or a cache state that lasts the
whole level moves every request together, and a bootstrap over those requests cannot see it. Trials repeat the
level (each with its own warm-up and arrival seed); their pooled requests make the level's row, and the spread of
their statistics bounds its sampling uncertainty from below (evals.analysis.stats.level_log_se).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from evals.latency.client import RequestResult
from evals.latency.loadgen import LevelRun

# The series a comparison judges (evals.analysis.latency_deltas), each with its between-trial CV column.
TRIAL_SERIES = ("ttft_p95_ms", "e2e_p95_ms", "output_tokens_per_s")


def trial_cv_column(series: str) -> str:
    return f"{series.removesuffix('_ms')}_trial_cv"


def pooled(runs: Sequence[LevelRun]) -> LevelRun:
    """One level from its trials, run one after another: request indexes continue from trial to trial, the level's
    time is the trials' measured time (not the warm-ups between them), the client's figures add up."""
    if not runs:
        raise ValueError("a level needs at least one trial")
    if len(runs) == 1:
        return runs[0]
    results: list[RequestResult] = []
    spans: list[int] = []
    offset = 0
    for run in runs:
        span = max((r.index for r in run.results), default=-1) + 1
        results.extend(dataclasses.replace(r, index=r.index + offset) for r in run.results)
        spans.append(span)
        offset += span
    return LevelRun(
        level=runs[0].level,
        start=runs[0].start,
        results=results,
        warmup=[r for run in runs for r in run.warmup],
        prompts_used=runs[-1].prompts_used,
        processes=runs[0].processes,
        loop_lag_ms=[lag for run in runs for lag in run.loop_lag_ms],
        cpu_s=sum(run.cpu_s for run in runs),
        wall_s=sum(run.wall_s for run in runs),
        server=_pooled_server([run.server for run in runs]),
        trial_sizes=spans,
        measured_s=sum(max(run.duration_s, 0.0) for run in runs),
    )


def _pooled_server(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The server's columns over the trials: scrapes add up, every other column is the trials' mean weighted by
    their scrapes (a trial without scrapes adds nothing)."""
    weights = [int(s.get("server_metrics_scrapes") or 0) for s in summaries]
    out: dict[str, Any] = {"server_metrics_scrapes": sum(weights) or None}
    for name in summaries[0]:
        if name == "server_metrics_scrapes":
            continue
        present = [(s[name], w) for s, w in zip(summaries, weights, strict=True) if s.get(name) is not None and w]
        total = sum(w for _, w in present)
        out[name] = sum(v * w for v, w in present) / total if total else None
    return out


def trial_columns(trial_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``n_trials`` and each judged series' coefficient of variation between the trials' own rows (sample SD over
    mean, scipy's ``variation`` with ddof 1); null with one trial or a series some trial lacks."""
    columns: dict[str, Any] = {"n_trials": len(trial_rows)}
    for series in TRIAL_SERIES:
        values = [row.get(series) for row in trial_rows]
        columns[trial_cv_column(series)] = (
            _cv([float(v) for v in values if v is not None])
            if len(values) > 1 and all(v is not None for v in values)
            else None
        )
    return columns


def _cv(values: list[float]) -> float | None:
    from scipy.stats import variation

    if not all(v > 0 for v in values):
        return None
    return float(variation(values, ddof=1))
