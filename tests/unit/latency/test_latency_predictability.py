"""Predictability per level against independent references: numpy's percentiles, scipy's Wilson interval."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from evals.latency.client import RequestResult, _fail
from evals.latency.predictability import (
    is_timeout,
    jitter,
    predictability_columns,
    tail_ratio,
    wilson_interval,
)

RNG = np.random.default_rng(3)
ARRAYS = [RNG.lognormal(3, 0.6, size=n).tolist() for n in (1, 2, 7, 64, 1000)] + [[5.0, 5.0, 5.0], [1.0, 100.0]]


@pytest.mark.parametrize("values", ARRAYS)
def test_tail_ratio_and_jitter_match_numpy(values: list[float]) -> None:
    p50, p99 = np.percentile(values, 50), np.percentile(values, 99)
    assert tail_ratio(values) == pytest.approx(p99 / p50, rel=1e-12)
    assert jitter(values) == pytest.approx(p99 - p50, rel=1e-12, abs=1e-12)
    assert tail_ratio(values) >= 1.0 and jitter(values) >= 0.0  # type: ignore[operator]


def test_no_values_and_a_zero_median_give_none() -> None:
    assert tail_ratio([]) is None and jitter([]) is None
    assert tail_ratio([0.0, 0.0, 3.0]) is None  # P50 of 0 (tokens in one chunk): no ratio
    assert jitter([0.0, 0.0, 3.0]) == pytest.approx(np.percentile([0.0, 0.0, 3.0], 99))


@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 64), (1, 64), (3, 10), (32, 64), (63, 64), (64, 64), (7, 1000)])
def test_wilson_interval_matches_scipy(k: int, n: int) -> None:
    reference = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(reference.low, abs=1e-12) and high == pytest.approx(reference.high, abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0  # type: ignore[operator]


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (None, None)
    assert wilson_interval(0, 64)[0] == 0.0 and wilson_interval(64, 64)[1] == 1.0
    assert wilson_interval(0, 64)[1] == pytest.approx(3.8415 / (64 + 3.8415), abs=1e-4)  # z²/(n+z²)
    with pytest.raises(ValueError, match=r"within 0\.\.n"):
        wilson_interval(5, 4)


def test_the_clients_own_timeout_reason_is_a_timeout_and_nothing_else_is() -> None:
    timed_out = RequestResult(index=0, scheduled=0.0)
    _fail(timed_out, "timeout after 1.5s (2 chunks received)")
    assert is_timeout(timed_out.error)
    for other in ("HTTP 500: injected failure", "server error event: x", "connection error: OSError: refused", None):
        assert not is_timeout(other)


def test_predictability_columns_split_timeouts_from_other_failures() -> None:
    errors = [None] * 90 + ["timeout after 2s (0 chunks received)"] * 4 + ["HTTP 503: busy"] * 6
    ttft = RNG.gamma(2.0, 20.0, size=90).tolist()
    e2e = [t + 300 for t in ttft]
    itl = RNG.exponential(8.0, size=900).tolist()
    row = predictability_columns(ttft_ms=ttft, e2e_ms=e2e, itl_ms=itl, errors=errors)
    assert row["n_timeouts"] == 4
    assert row["timeout_rate"] == pytest.approx(0.04) and row["error_rate"] == pytest.approx(0.06)
    ci = binomtest(6, 100).proportion_ci(method="wilson")
    assert (row["error_rate_ci_low"], row["error_rate_ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert row["ttft_tail_ratio"] == pytest.approx(np.percentile(ttft, 99) / np.percentile(ttft, 50))
    assert row["e2e_tail_ratio"] == pytest.approx(np.percentile(e2e, 99) / np.percentile(e2e, 50))
    assert row["itl_jitter_ms"] == pytest.approx(np.percentile(itl, 99) - np.percentile(itl, 50))
    empty = predictability_columns(ttft_ms=[], e2e_ms=[], itl_ms=[], errors=[])
    assert empty["error_rate"] is None and empty["error_rate_ci_low"] is None and empty["n_timeouts"] == 0
