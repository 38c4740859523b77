"""CIs and verdicts: exact formulas, direction, thresholds, coverage and false-positive rates over many seeds."""

import math
import time

import numpy as np
import pytest

from evals.analysis import stats, verdicts


def test_standard_error_prefers_stored_then_binomial_for_proportions_only() -> None:
    assert stats.standard_error(0.7, 0.01, 1000, "acc") == (0.01, "stderr")
    se, how = stats.standard_error(0.7, None, 1000, "acc")
    assert how == "binomial" and se == pytest.approx(math.sqrt(0.7 * 0.3 / 1000))
    assert stats.standard_error(0.7, float("nan"), 1000, "acc")[1] == "binomial"
    assert stats.standard_error(0.7, None, 1000, "f1") == (None, None)  # not a 0/1 score
    assert stats.standard_error(12.0, None, 1000, "acc") == (None, None)  # not a proportion
    assert stats.standard_error(0.7, None, None, "acc") == (None, None)


def test_normal_diff_ci() -> None:
    est = stats.normal_diff(0.65, 0.015, 0.70, 0.014, 0.05)
    half = 1.959963984540054 * math.sqrt(0.015**2 + 0.014**2)
    assert est.delta == pytest.approx(-0.05)
    assert (est.ci_low, est.ci_high) == (pytest.approx(-0.05 - half), pytest.approx(-0.05 + half))
    assert stats.normal_diff(0.65, None, 0.70, 0.014, 0.05).ci_low is None


def _est(delta: float | None, se: float | None, p: float | None = None, **extra: float) -> stats.Estimate:
    if se is not None and p is None and delta is not None:
        p = stats.two_sided_p(delta, se)
    return stats.Estimate(1.0, 1.0, delta, se=se, p_value=p, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("est", "higher", "threshold", "expected"),
    [
        (_est(-0.05, 0.02), True, 0.01, "regression"),  # accuracy down, significant, practical
        (_est(0.05, 0.02), True, 0.01, "improvement"),
        (_est(-0.05, 0.03), True, 0.01, "no_change"),  # not significant, CI wider than the margin
        (_est(-0.005, 0.0015), True, 0.01, "equivalent"),  # significant but inside the practical margin
        (_est(0.001, 0.002), True, 0.01, "equivalent"),  # 90 % CI inside ±1 point: no change, for sure
        (_est(30.0, 5.0), False, 5.0, "regression"),  # latency up is worse
        (_est(-30.0, 5.0), False, 5.0, "improvement"),
        (_est(0.2, None), False, 0.05, "insufficient_data"),  # no SE: a threshold alone decides nothing
        (_est(-2.0, None), True, 1.0, "insufficient_data"),  # BLEU without stderr
        (_est(None, None), True, 0.0, "insufficient_data"),
        (_est(5.0, 10.0, night_se=9.0), False, 5.0, "noisy"),  # the night noise alone hides a 5-unit change
        (_est(5.0, 10.0, night_se=1.0), False, 5.0, "no_change"),  # sampling, not the series, is the limit
    ],
)
def test_decide(est: stats.Estimate, higher: bool, threshold: float, expected: str) -> None:
    assert verdicts.decide(est, higher, threshold, est.p_value, 0.05) == expected


def _accuracy_trials(p_a: float, p_b: float, n: int, seeds: int) -> tuple[float, float]:
    """(share of CIs containing p_a - p_b, share significant) for independent binomial runs."""
    rng = np.random.default_rng(12345)
    a, b = rng.binomial(n, p_a, seeds) / n, rng.binomial(n, p_b, seeds) / n
    covered = flagged = 0
    for va, vb in zip(a, b, strict=True):
        se_a = math.sqrt(va * (1 - va) / (n - 1))
        se_b = math.sqrt(vb * (1 - vb) / (n - 1))
        est = stats.normal_diff(float(va), se_a, float(vb), se_b, 0.05)
        assert est.ci_low is not None and est.ci_high is not None
        covered += est.ci_low <= p_a - p_b <= est.ci_high
        flagged += verdicts.decide(est, True, 0.0, est.p_value, 0.05) in verdicts.JUDGED
    return covered / seeds, flagged / seeds


def test_accuracy_drop_of_5_points_at_n_1000_coverage_and_power() -> None:
    coverage, power = _accuracy_trials(0.65, 0.70, 1000, 4000)
    # Two independent runs of 1000 items: the SE of the difference is ~2.1 points, so a 5-point drop is flagged
    # about 2 times in 3 (analytic power 0.67); the CI holds the truth 95 % of the time.
    assert 0.935 <= coverage <= 0.965
    assert 0.60 <= power <= 0.74


def test_accuracy_false_positive_rate_is_near_alpha() -> None:
    _, false_positive = _accuracy_trials(0.70, 0.70, 1000, 4000)
    assert 0.035 <= false_positive <= 0.065


def _latency_trials(scale: float, n: int, seeds: int, resamples: int) -> tuple[float, float, float]:
    sigma = 0.35
    truth = 100 * math.exp(sigma * 1.6448536269514722) * (scale - 1)
    covered = flagged = 0
    started = time.perf_counter()
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        a = 100 * scale * np.exp(sigma * rng.standard_normal(n))
        b = 100 * np.exp(sigma * rng.standard_normal(n))
        est = stats.bootstrap_diff(
            {"x": a}, {"x": b}, stats.quantile_stat("x", 0.95), alpha=0.05, resamples=resamples, seed=seed
        )
        assert est.ci_low is not None and est.ci_high is not None
        covered += est.ci_low <= truth <= est.ci_high
        flagged += not est.ci_low <= 0 <= est.ci_high
    return covered / seeds, flagged / seeds, (time.perf_counter() - started) / seeds


def test_p95_ttft_up_30_percent_is_flagged_with_ci_containing_the_truth() -> None:
    coverage, power, per_trial = _latency_trials(1.3, 500, 60, 1000)
    assert power == 1.0
    assert coverage >= 0.88  # measured 0.95–0.98 (percentile bootstrap of a P95)
    assert per_trial < 0.5


def test_p95_ttft_identical_distributions_false_positive_rate_near_alpha() -> None:
    _coverage, false_positive, per_trial = _latency_trials(1.0, 300, 200, 1000)
    # 200 seeds: the binomial SE of the rate is ~1.5 points; measured 0.06.
    assert 0.01 <= false_positive <= 0.11
    assert per_trial < 0.2


def test_bootstrap_is_seeded_and_chunked() -> None:
    rng = np.random.default_rng(0)
    a, b = {"x": rng.normal(size=50)}, {"x": rng.normal(size=50)}
    stat = stats.quantile_stat("x", 0.5)
    first = stats.bootstrap_diff(a, b, stat, alpha=0.1, resamples=500, seed=7)
    assert first == stats.bootstrap_diff(a, b, stat, alpha=0.1, resamples=500, seed=7)
    big = {"x": rng.normal(size=20_000)}  # 500 x 20k values > one chunk: drawn in several chunks
    est = stats.bootstrap_diff(big, big, stat, alpha=0.1, resamples=500, seed=1)
    assert est.delta == 0 and est.ci_low is not None and est.ci_low < 0 < est.ci_high  # type: ignore[operator]


def test_between_trials_is_the_t_standard_error_of_the_trials_log_statistics() -> None:
    rng = np.random.default_rng(3)
    ttft = rng.lognormal(4.0, 0.4, 300) * np.repeat([1.0, 1.3, 0.9], 100)
    trial = np.repeat([0.0, 1.0, 2.0], 100)
    se, df = stats.between_trials({"ttft_ms": ttft}, stats.quantile_stat("ttft_ms", 0.95), trial, min_rows=10)
    logs = np.log([np.percentile(ttft[trial == k], 95) for k in range(3)])
    assert (se, df) == (pytest.approx(logs.std(ddof=1) / math.sqrt(3)), 2.0)
    p95 = stats.quantile_stat("ttft_ms", 0.95)
    assert stats.between_trials({"ttft_ms": ttft}, p95, np.zeros(300), min_rows=10) is None  # one trial
    assert stats.between_trials({"ttft_ms": ttft}, p95, trial, min_rows=101) is None  # trials too small


def test_a_level_takes_the_larger_of_the_bootstrap_and_the_between_trial_se() -> None:
    rng = np.random.default_rng(5)
    trial = np.repeat(np.arange(5.0), 60)
    p95 = stats.quantile_stat("ttft_ms", 0.95)
    for drift, chosen in ((1.0, "trials"), (0.0, None)):
        shifts = np.repeat(np.exp(drift * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])), 60)
        sample = {"ttft_ms": 100 * shifts * np.exp(0.5 * rng.standard_normal(300))}
        boot = stats.level_log_se(sample, p95, trial=None, resamples=200, rng=np.random.default_rng(0), min_rows=10)
        level = stats.level_log_se(sample, p95, trial=trial, resamples=200, rng=np.random.default_rng(0), min_rows=10)
        across = stats.between_trials(sample, p95, trial, min_rows=10)
        assert boot is not None and boot[1] is None and across is not None
        # Whole trials 2.7x apart: their spread dwarfs the bootstrap's; identical trials: the bootstrap stands.
        assert level == (across if chosen else boot)
        assert (across[0] > boot[0]) == bool(chosen)
