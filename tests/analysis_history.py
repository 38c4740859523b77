"""Synthetic run histories for comparison tests: binomial accuracy and lognormal latency with known truths."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
from factories import publish_run, run_record, sha

from evals.schemas import LATENCY_LEVEL_EXTRA
from evals.warehouse import RunRecord, Warehouse

TTFT_MEDIAN_MS = 100.0
TTFT_SIGMA = 0.35
E2E_EXTRA_MEDIAN_MS = 400.0
OUTPUT_TOKENS = 64
GPU_HOUR_USD = 2.0


def true_ttft_p95(scale: float = 1.0) -> float:
    """The population P95 of the simulated TTFT (lognormal): what an injected +30 % moves by exactly 30 %."""
    return scale * TTFT_MEDIAN_MS * math.exp(TTFT_SIGMA * 1.6448536269514722)


def accuracy_tables(record: RunRecord, rng: np.random.Generator, p: float, n: int) -> list[dict[str, Any]]:
    """One task scored on n items with true accuracy p; stderr as lm-eval reports it (sample std / sqrt(n))."""
    return [accuracy_row(record, "arc_easy", float(rng.binomial(n, p) / n), n)]


def accuracy_row(
    record: RunRecord, task: str, value: float, n: int, *, group: str | None = None, task_version: str = "1.0"
) -> dict[str, Any]:
    """One ``acc`` row of ``task`` scored ``value`` on n items; stderr as lm-eval reports it."""
    return {
        "model_id": record.model_id,
        "revision": record.revision,
        "suite": record.suite,
        "task": task,
        "task_group": group,
        "task_version": task_version,
        "metric": "acc",
        "filter": "none",
        "value": value,
        "stderr": math.sqrt(value * (1 - value) / (n - 1)),
        "n_samples": n,
        "num_fewshot": 0,
        "higher_is_better": True,
    }


def latency_tables(
    record: RunRecord,
    rng: np.random.Generator,
    *,
    ttft_scale: float,
    n_requests: int,
    load: float = 4.0,
    trials: int = 1,
    trial_sd: float = 0.0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(latency rows, latency_samples rows) of one closed-loop level, the level row computed from its samples.

    ``trials`` > 1: the requests come from that many trials of equal size, each trial's TTFT moved as a whole by
    exp(``trial_sd`` x N(0, 1)) (what a bootstrap over requests cannot see)."""
    trial = np.arange(n_requests) * trials // n_requests
    trial_shift = np.exp(trial_sd * rng.standard_normal(trials))[trial] if trials > 1 else 1.0  # same draws as before
    ttft = TTFT_MEDIAN_MS * ttft_scale * trial_shift * np.exp(TTFT_SIGMA * rng.standard_normal(n_requests))
    e2e = ttft + E2E_EXTRA_MEDIAN_MS * np.exp(0.2 * rng.standard_normal(n_requests))
    sent = np.cumsum(rng.exponential(0.05, n_requests))
    samples = [
        {
            "model_id": record.model_id,
            "revision": record.revision,
            "scenario": record.scenario,
            "load_type": "concurrency",
            "load": load,
            "request_index": i,
            "scheduled_s": float(sent[i]),
            "sent_s": float(sent[i]),
            "first_token_s": float(sent[i] + ttft[i] / 1000),
            "finished_s": float(sent[i] + e2e[i] / 1000),
            "prompt_tokens": 32,
            "output_tokens": OUTPUT_TOKENS,
            "itl_ms": None,
            "ok": True,
            "error": None,
            "trial": int(trial[i]) if trials > 1 else None,
        }
        for i in range(n_requests)
    ]
    duration = float((sent + e2e / 1000).max())
    tokens_per_s = OUTPUT_TOKENS * n_requests / duration
    row: dict[str, Any] = {
        "model_id": record.model_id,
        "revision": record.revision,
        "scenario": record.scenario,
        "load_type": "concurrency",
        "load": load,
        "n_requests": n_requests,
        "n_failed": 0,
        "duration_s": duration,
        "output_tokens_per_s": tokens_per_s,
        "requests_per_s": n_requests / duration,
        "goodput": 1.0,
        "slo": "{}",
        "gpu_hour_usd": GPU_HOUR_USD,
        "gpu_count": 1,
        "usd_per_1m_output_tokens": GPU_HOUR_USD / (tokens_per_s * 3600) * 1e6,
        **dict.fromkeys(LATENCY_LEVEL_EXTRA),  # client/server columns: none here
        "n_trials": trials,
    }
    for metric, values in (("ttft", ttft), ("e2e", e2e), ("tpot", (e2e - ttft) / (OUTPUT_TOKENS - 1)), ("itl", None)):
        for stat, q in (("mean", None), ("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
            if values is None:
                row[f"{metric}_{stat}_ms"] = None
            else:
                row[f"{metric}_{stat}_ms"] = float(values.mean() if q is None else np.percentile(values, q))
    return [row], samples


def publish_night(
    wh: Warehouse,
    model_id: str,
    day: int,
    *,
    seed: int,
    accuracy: float = 0.70,
    n_items: int = 1000,
    ttft_scale: float = 1.0,
    n_requests: int = 400,
    revision: str | None = None,
    trials: int = 1,
    trial_sd: float = 0.0,
) -> RunRecord:
    """Publish one run (accuracy + latency + samples) of ``model_id`` on 2026-11-<day>."""
    rng = np.random.default_rng(seed)
    record = run_record(model_id, day, revision=revision or sha(f"{model_id}@{day}"))
    latency, samples = latency_tables(
        record, rng, ttft_scale=ttft_scale, n_requests=n_requests, trials=trials, trial_sd=trial_sd
    )
    tables = {
        "accuracy": accuracy_tables(record, rng, accuracy, n_items),
        "latency": latency,
        "latency_samples": samples,
    }
    return publish_run(wh, record, tables)


def day(n: int) -> dt.date:
    return dt.date(2026, 11, n)
