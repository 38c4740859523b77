"""A level run as trials: the pooled level, its samples' trial labels, the between-trial CVs (against numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from factories import ok_request

from evals.latency.loadgen import LevelRun
from evals.latency.metrics import sample_rows, summarize_level
from evals.latency.scenario import ConcurrencyLevel
from evals.latency.trials import pooled, trial_columns

LEVEL = ConcurrencyLevel(concurrency=1)


def _trial(start: float, ttfts: list[float], *, gap: float = 0.1, scrapes: int | None = None) -> LevelRun:
    """Requests one after another from ``start``: TTFT as given, 4 tokens 10 ms apart after the first."""
    results, sent = [], start
    for index, ttft in enumerate(ttfts):
        tokens = [sent + ttft + 0.01 * k for k in range(4)]
        results.append(ok_request(index, sent, tokens))
        sent = tokens[-1] + gap
    run = LevelRun(level=LEVEL, start=start, results=results, prompts_used=len(ttfts), cpu_s=0.5, wall_s=2.0)
    run.server = {
        "server_metrics_scrapes": scrapes,
        "server_kv_cache_usage_mean": None if scrapes is None else 0.1 * scrapes,
    }
    return run


def _summary(run: LevelRun) -> dict:
    row = summarize_level(run, scenario="s", slo={}, gpu_hour_usd=2.0, gpu_count=1, model_id="m", revision="r" * 40).row
    return row


def test_pooled_trials_continue_the_indexes_and_time_only_what_was_measured() -> None:
    # Trial 2 starts 100 s after trial 1 (its warm-up in between): that gap is not the level's time.
    first, second = _trial(0.0, [0.05, 0.07, 0.06]), _trial(100.0, [0.2, 0.25])
    level = pooled([first, second])
    assert [r.index for r in level.results] == [0, 1, 2, 3, 4]
    assert level.trial_sizes == [3, 2]
    assert level.duration_s == pytest.approx(first.end - first.start + second.end - second.start)
    assert level.cpu_s == 1.0 and level.wall_s == 4.0
    row = _summary(level)
    assert row["n_requests"] == 5
    assert row["output_tokens_per_s"] == pytest.approx(20 / level.duration_s)
    assert row["ttft_p95_ms"] == pytest.approx(np.percentile([50, 70, 60, 200, 250], 95))
    trials = [r["trial"] for r in sample_rows(level, scenario="s", model_id="m", revision="r" * 40)]
    assert trials == [0, 0, 0, 1, 1]
    assert pooled([first]) is first
    assert sample_rows(first, scenario="s", model_id="m", revision="r" * 40)[0]["trial"] is None


def test_the_server_columns_are_weighted_by_each_trials_scrapes() -> None:
    level = pooled([_trial(0.0, [0.1], scrapes=1), _trial(10.0, [0.1], scrapes=3), _trial(20.0, [0.1])])
    assert level.server["server_metrics_scrapes"] == 4
    assert level.server["server_kv_cache_usage_mean"] == pytest.approx((0.1 * 1 + 0.3 * 3) / 4)


def test_trial_cvs_are_the_sample_cv_of_each_trials_statistic() -> None:
    runs = [_trial(10.0 * k, [0.05 * (k + 1)] * 20) for k in range(3)]
    rows = [_summary(run) for run in runs]
    columns = trial_columns(rows)
    p95 = np.array([row["ttft_p95_ms"] for row in rows])
    assert columns["n_trials"] == 3
    assert columns["ttft_p95_trial_cv"] == pytest.approx(p95.std(ddof=1) / p95.mean())
    tps = np.array([row["output_tokens_per_s"] for row in rows])
    assert columns["output_tokens_per_s_trial_cv"] == pytest.approx(tps.std(ddof=1) / tps.mean())
    assert trial_columns(rows[:1]) == {
        "n_trials": 1,
        "ttft_p95_trial_cv": None,
        "e2e_p95_trial_cv": None,
        "output_tokens_per_s_trial_cv": None,
    }
