"""Night-to-night noise: estimated from re-measurements, defaulted when short, carried into latency/cost tests."""

import math

import numpy as np
import pytest

from evals.analysis import noise, stats, verdicts


def test_night_noise_is_estimated_from_unchanged_revisions_and_defaulted_when_short() -> None:
    rng = np.random.default_rng(0)
    series = [list(200 * np.exp(0.08 * rng.standard_normal(30))), list(90 * np.exp(0.08 * rng.standard_normal(30)))]
    estimated = noise.night_noise(series, default_cv=0.10, min_history=5)
    assert estimated.estimated and estimated.df == 58 and estimated.sd == pytest.approx(0.08, abs=0.015)
    short = noise.night_noise([[200.0, 210.0, 190.0]], default_cv=0.10, min_history=5)
    assert not short.estimated and short.sd == pytest.approx(math.log1p(0.10)) and "default" in short.describe()


def _p95_trial(rng: np.random.Generator, step: float) -> stats.Estimate:
    """14 nights of one revision drifting with log-SD 0.10, then tonight (x ``step``), 300 requests a night."""
    scale = np.exp(0.10 * rng.standard_normal(15))
    scale[-1] *= step
    samples = 100 * scale[:, None] * np.exp(0.3 * rng.standard_normal((15, 300)))
    p95 = np.quantile(samples, 0.95, axis=1)
    stat = stats.quantile_stat("x", 0.95)
    se = [float(np.std(stats.bootstrap_log({"x": s}, stat, resamples=100, rng=rng))) for s in samples[-1:-3:-1]]
    night = noise.night_noise([p95[:-1]], default_cv=0.10, min_history=5)
    return noise.series_diff(float(p95[-1]), se[0], list(p95[:-1]), se[1], night).estimate(0.05)


def test_night_drift_does_not_raise_false_alarms_and_the_ci_covers() -> None:
    # Round 2 bootstrapped tonight's requests against last night's: with a log-SD 0.10 drift it alarmed on ~20 %
    # of unchanged levels. With the night noise in the test, the rate is near alpha and the CI covers the truth.
    rng = np.random.default_rng(1)
    estimates = [_p95_trial(rng, 1.0) for _ in range(300)]
    false = np.mean([(e.p_value or 1) < 0.05 for e in estimates])
    assert false <= 0.08


def test_a_30_percent_step_is_usually_seen() -> None:
    rng = np.random.default_rng(2)
    found = np.mean([(e.p_value or 1) < 0.05 for e in (_p95_trial(rng, 1.3) for _ in range(150))])
    assert found >= 0.6  # one test at alpha (z about 2.5); a night's BH threshold is stricter


def test_open_loop_throughput_has_a_ci_of_nonzero_width() -> None:
    # ignore_eos: every request emits 128 tokens, so sum(tokens) has no spread; tokens over durations does.
    rng = np.random.default_rng(3)
    level = {"output_tokens": np.full(200, 128.0), "e2e_ms": 900 * np.exp(0.2 * rng.standard_normal(200))}
    reps = stats.bootstrap_log(level, stats.ratio_stat("output_tokens", "e2e_ms"), resamples=200, rng=rng)
    assert np.std(reps) > 0.005


def test_cost_is_throughputs_test_moved_by_the_price() -> None:
    tps = noise.LogDiff(value=110.0, reference=100.0, delta=math.log(1.1), se=0.05, df=None, night_sd=0.04)
    same = noise.shifted(tps, 9.0, 0.0).estimate(0.05)
    dearer = noise.shifted(tps, 18.0, math.log(2.0)).estimate(0.05)
    assert same.p_value == pytest.approx(tps.estimate(0.05).p_value)
    assert same.baseline_value == pytest.approx(9.9) and dearer.baseline_value == pytest.approx(9.9)
    assert verdicts.decide(dearer, False, 0.05 * 9.9, dearer.p_value, 0.05) == "regression"


def test_trial_variances_carry_their_degrees_of_freedom_into_the_t() -> None:
    # An estimated noise (log-SD 0.05 from 13 re-measurements) below tonight's trial SE (0.08, 4 df) and above the
    # baseline's (0.02, 4 df): tonight's night variance is its trials' (4 df), the baseline's the series' (13 df).
    night = noise.NightNoise(0.05, 13.0, estimated=True)
    history = [100.0, 110.0, 90.0]
    diff = noise.series_diff(120.0, 0.08, history, 0.02, night, sampling_df=4.0, history_df=4.0)
    parts = [(0.05**2 / 3, 13.0), (0.08**2, 4.0)]  # the baseline's nights averaged over k = 3
    total = sum(v for v, _ in parts)
    assert diff.se == pytest.approx(math.sqrt(total))
    assert diff.df == pytest.approx(total**2 / sum(v**2 / df for v, df in parts))
    assert diff.method == "trials"
    # Trials whose spread the estimated noise exceeds on both sides leave the noise's df and the bootstrap label.
    quiet = noise.series_diff(120.0, 0.01, history, 0.02, night, sampling_df=4.0, history_df=4.0)
    assert (quiet.df, quiet.method) == (13.0, "bootstrap")
    assert quiet.se == pytest.approx(math.sqrt(0.05**2 * (1 + 1 / 3)))
