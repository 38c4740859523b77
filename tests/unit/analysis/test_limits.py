"""The predictability criteria of the serving decision: their bounds hold their level, and their statuses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from evals.analysis.limits import error_rate_limit, min_requests_for_error_limit, tail_ratio_limit

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
