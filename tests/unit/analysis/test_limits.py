"""The predictability criteria of the serving decision: their bounds hold their level, and their statuses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from evals.analysis.limits import (
    error_rate_limit,
    latency_limit,
    min_requests_for_error_limit,
    quantile_bounds,
    tail_ratio_limit,
    trial_bounds,
)

ALPHA = 0.05
SIGMA = 0.4  # lognormal TTFT: the true P99/P50 is exp(sigma x z(0.99)), whatever the median


def true_tail_ratio(sigma: float = SIGMA) -> float:
    return math.exp(sigma * norm.ppf(0.99))


def test_tail_ratio_bounds_cover_the_true_ratio() -> None:
    rng = np.random.default_rng(2026)
    reps, n = 300, 800
    above = below = 0
    for _ in range(reps):
        c = tail_ratio_limit("t", None, list(100 * np.exp(SIGMA * rng.standard_normal(n))), 10.0, ALPHA)
        assert c.ci_low is not None and c.ci_high is not None
        above += c.ci_high < true_tail_ratio()
        below += c.ci_low > true_tail_ratio()
    print(f"\ntail ratio {true_tail_ratio():.3f}: upper bound below it {above}/{reps}, lower above {below}/{reps}")
    # Each one-sided bound misses at most alpha of the time (Bonferroni over two quantiles: usually much less).
    assert above / reps <= ALPHA and below / reps <= ALPHA


def test_tail_ratio_statuses() -> None:
    rng = np.random.default_rng(7)
    ttft = list(100 * np.exp(SIGMA * rng.standard_normal(2000)))  # true ratio 2.54
    assert tail_ratio_limit("t", None, ttft, 4.0, ALPHA).status == "pass"
    failed = tail_ratio_limit("t", None, ttft, 1.5, ALPHA)
    assert failed.status == "fail" and "lower bound" in failed.detail
    few = tail_ratio_limit("t", None, ttft[:100], 4.0, ALPHA)  # P99 upper bound at alpha/2: 1 - 0.99^n >= 0.975
    assert few.status == "inconclusive" and "needs >= 368" in few.detail
    assert few.estimate == pytest.approx(np.percentile(ttft[:100], 99) / np.percentile(ttft[:100], 50))
    assert tail_ratio_limit("t", 1.2, [], 2.0, ALPHA).status == "pass"  # no samples: the stored ratio is judged
    assert tail_ratio_limit("t", None, [], 2.0, ALPHA).status == "inconclusive"


def test_error_rate_limit_uses_the_one_sided_wilson_bound() -> None:
    limit = 0.01
    need = min_requests_for_error_limit(limit, ALPHA)
    assert need == 268  # no error in n requests: 1.645² / (n + 1.645²) <= 1 % from n = 268
    assert error_rate_limit("e", 0, need, limit, ALPHA).status == "pass"
    held = error_rate_limit("e", 0, need - 1, limit, ALPHA)
    assert held.status == "inconclusive" and f"needs >= {need} requests" in held.detail
    failed = error_rate_limit("e", 12, 300, limit, ALPHA)
    ci = binomtest(12, 300).proportion_ci(confidence_level=1 - 2 * ALPHA, method="wilson")
    assert failed.status == "fail" and (failed.ci_low, failed.ci_high) == pytest.approx((ci.low, ci.high))
    assert error_rate_limit("e", None, None, limit, ALPHA).status == "inconclusive"


def test_quantile_bounds_need_enough_requests() -> None:
    values = list(np.linspace(1, 100, 58))
    assert quantile_bounds(values, 0.95, ALPHA)[1] is None  # 58 < 59: no upper bound of the P95
    low, high = quantile_bounds(list(np.linspace(1, 100, 200)), 0.95, ALPHA)
    assert low is not None and high is not None and low < 95 < high
    assert latency_limit("ttft", 50.0, values, 200.0, ALPHA).status == "inconclusive"
    assert latency_limit("ttft", 50.0, list(np.linspace(1, 100, 200)), 200.0, ALPHA).status == "pass"
    assert latency_limit("ttft", 95.0, list(np.linspace(1, 100, 200)), 50.0, ALPHA).status == "fail"


def _drifting_level(rng: np.random.Generator, trials: int, n: int, drift: float) -> tuple[list[float], list[int]]:
    """A level's TTFTs as ``trials`` trials of ``n`` requests, each trial moved as a whole by exp(drift x N(0, 1))."""
    shift = np.repeat(np.exp(drift * rng.standard_normal(trials)), n)
    ttft = 100.0 * shift * np.exp(SIGMA * rng.standard_normal(trials * n))
    return list(ttft), list(np.repeat(np.arange(trials), n))


def test_drifting_trials_widen_the_bounds_and_say_so() -> None:
    ttft, trials = _drifting_level(np.random.default_rng(3), 5, 60, 0.4)
    alone = latency_limit("ttft", None, ttft, 1000.0, ALPHA)
    told = latency_limit("ttft", None, ttft, 1000.0, ALPHA, trials=trials)
    assert told.ci_high is not None and alone.ci_high is not None and told.ci_high > alone.ci_high
    assert told.status == "pass" and "upper bound" in told.detail and "between 5 trials" in told.detail
    found = trial_bounds(ttft, trials, 0.95, ALPHA)
    assert found is not None and found[2] == "5 trials"
    # A trial too small to have a P95 of its own is left out of the spread, and the detail says so.
    short = trial_bounds(ttft[:185], trials[:185], 0.95, ALPHA)  # trial 3 has 5 requests
    assert short is not None and short[2] == "3 of 4 trials"
    # Labels that are not one per sample, a single trial, or a single trial left: order statistics only.
    assert trial_bounds(ttft, trials[:-1], 0.95, ALPHA) is None
    assert trial_bounds(ttft, [0] * len(ttft), 0.95, ALPHA) is None
    assert trial_bounds(ttft[:65], trials[:65], 0.95, ALPHA) is None  # trial 1 has 5 requests
    assert latency_limit("ttft", None, ttft, 1000.0, ALPHA, trials=trials[:-1]).ci_high == alone.ci_high


def test_a_level_of_drifting_trials_passes_a_p95_over_the_limit_less_often() -> None:
    """The limit set at the true P95 of the drifting process (lognormal, log-SD hypot(sigma, drift)): a pass is a
    false pass. Order statistics over the pooled requests pass it far more often than alpha; the trials' spread
    halves that (measured in bench/trial_calibration.py), and costs little where nothing drifts."""
    rng = np.random.default_rng(2026)
    reps, drift = 300, 0.3
    truth = 100.0 * math.exp(norm.ppf(0.95) * math.hypot(SIGMA, drift))
    false_pass = {"alone": 0, "trials": 0}
    for _ in range(reps):
        ttft, trials = _drifting_level(rng, 5, 60, drift)
        false_pass["alone"] += latency_limit("t", None, ttft, truth, ALPHA).status == "pass"
        false_pass["trials"] += latency_limit("t", None, ttft, truth, ALPHA, trials=trials).status == "pass"
    print(f"\nfalse passes at drift {drift}: {false_pass}")
    assert false_pass["alone"] > 3 * ALPHA * reps
    assert false_pass["trials"] < 0.7 * false_pass["alone"]
    still = 100.0 * math.exp(norm.ppf(0.95) * SIGMA)
    passes = sum(
        latency_limit("t", None, ttft, 1.3 * still, ALPHA, trials=trials).status == "pass"
        for ttft, trials in (_drifting_level(rng, 5, 60, 0.0) for _ in range(100))
    )
    assert passes >= 85  # a P95 30 % under the limit, no drift: passed as before


def test_the_detail_names_the_trials_only_for_the_bound_they_gave() -> None:
    """A bound the order statistics gave is not attributed to the trials' spread (only the other one widened)."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        ttft, trials = _drifting_level(rng, 5, 60, 0.1)
        low, high = quantile_bounds(ttft, 0.95, ALPHA)
        found = trial_bounds(ttft, trials, 0.95, ALPHA)
        assert found is not None and low is not None and high is not None
        if found[0] < low and found[1] <= high:  # only the lower bound widened
            passed = latency_limit("t", None, ttft, 2 * high, ALPHA, trials=trials)
            assert passed.status == "pass" and passed.ci_high == high and "trials" not in passed.detail
            return
    pytest.fail("no level where only the lower bound widened")
