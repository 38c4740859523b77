"""Night-level error control and the verdict vocabulary, checked on simulated nights with known truth."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from evals.analysis import stats, verdicts
from evals.analysis.paired import Pairs, paired_diff


def test_bh_controls_the_fdr_at_a_known_null_fraction() -> None:
    # 300 nights of 200 tests, 80 % true nulls (uniform p), 20 % real effects (z shifted by 3): the mean share of
    # false findings stays below alpha × m0/m = 0.04; unadjusted p < alpha would make it ~0.17.
    rng = np.random.default_rng(0)
    m, m1, alpha = 200, 40, 0.05
    fdp, naive = [], []
    for _ in range(300):
        z = rng.standard_normal(m)
        z[:m1] += 3.0
        p = 2 * norm.sf(np.abs(z))
        adjusted = np.asarray(verdicts.adjust(list(p)), dtype=float)
        found = adjusted <= alpha
        fdp.append(found[m1:].sum() / max(found.sum(), 1))
        naive.append((p[m1:] < alpha).sum() / max((p < alpha).sum(), 1))
    assert np.mean(fdp) <= 0.045
    assert np.mean(naive) > 0.12


def test_bh_under_the_complete_null_rarely_finds_anything() -> None:
    # A/A nights of 40 and 400 rows: BH keeps the chance of any false finding near alpha (not 1 - 0.95^m).
    rng = np.random.default_rng(1)
    for m in (40, 400):
        any_found = [min(a for a in verdicts.adjust(list(rng.random(m))) if a is not None) <= 0.05 for _ in range(400)]
        assert np.mean(any_found) <= 0.075


def test_a_tied_row_is_counted_once_and_shares_the_adjusted_p() -> None:
    adjusted = verdicts.adjust([0.01, 0.01, 0.04, None], ["tps", "tps", "ttft", "x"])
    # Two hypotheses, not three: the second 0.01 (cost, tied to throughput) does not count.
    assert adjusted == pytest.approx([0.02, 0.02, 0.04, None])


def _accuracy(rng: np.random.Generator, drop: float) -> stats.Estimate:
    base = (rng.random(2000) < 0.7).astype(float)
    u = rng.random(2000)
    broken, fixed = (0.15 - drop) / 2, (0.15 + drop) / 2
    flip = np.where(base == 1, u < broken / 0.7, u < fixed / 0.3)
    return paired_diff(Pairs(np.where(flip, 1 - base, base), base), alpha=0.05)


def test_a_night_of_identical_revisions_says_equivalent_or_no_change_never_a_change() -> None:
    rng = np.random.default_rng(2)
    rows = [verdicts.Judged(_accuracy(rng, 0.0), True, 0.01) for _ in range(40)]
    found = [v for v, _ in verdicts.judge_night(rows, 0.05)]
    assert not set(found) & set(verdicts.JUDGED)
    assert set(found) <= {"equivalent", "no_change"}


def test_a_night_with_a_regression_finds_it_and_summarizes() -> None:
    rng = np.random.default_rng(3)
    rows = [verdicts.Judged(_accuracy(rng, -0.06 if i < 3 else 0.0), True, 0.01) for i in range(20)]
    rows.append(verdicts.Judged(None))
    judged = verdicts.judge_night(rows, 0.05)
    assert [v for v, _ in judged[:3]] == ["regression"] * 3 and judged[-1] == ("no_baseline", None)
    table = [
        {"run_id": "r", "baseline_run_id": "b", "kind": "k", "metric": str(i), "verdict": v, "p_adjusted": p}
        for i, (v, p) in enumerate(judged)
    ]
    summary = verdicts.summarize(table, 0.05)
    assert (summary.rows, summary.tested, summary.findings) == (21, 20, 3)
    assert summary.expected_false == pytest.approx(0.15)
    assert "20 tests" in summary.text() and "expected false findings <= 0.15" in summary.text()


def test_no_verdict_from_a_threshold_alone() -> None:
    no_se = stats.Estimate(20.0, 25.0, -5.0)  # BLEU down 5 points, no stderr
    assert verdicts.judge_night([verdicts.Judged(no_se, True, 1.0)], 0.05) == [("insufficient_data", None)]


def test_stratified_group_ci_covers_with_two_subtasks() -> None:
    # Round 2's CR1 SE with 2 clusters covered ~67 %; the stratified SE with a t reference covers ~95 %.
    rng = np.random.default_rng(4)
    cluster = np.repeat([0, 1], 500)
    hits = 0
    trials = 1200
    for _ in range(trials):
        base = (rng.random(1000) < 0.7).astype(float)
        u = rng.random(1000)
        flip = np.where(base == 1, u < 0.06 / 0.7, u < 0.05 / 0.3)
        est = paired_diff(Pairs(np.where(flip, 1 - base, base), base, cluster), alpha=0.05)
        hits += est.ci_low <= -0.01 <= est.ci_high  # type: ignore[operator]
        assert est.method == "stratified"
    assert abs(hits / trials - 0.95) <= 0.018  # binomial SE of the rate: 0.006


def test_many_clusters_use_the_cluster_robust_se_with_t() -> None:
    rng = np.random.default_rng(5)
    cluster = np.repeat(np.arange(40), 10)
    d = rng.standard_normal(400)
    est = paired_diff(Pairs(d, np.zeros(400), cluster), alpha=0.05)
    assert est.method == "clustered" and est.df == 39
    assert math.isfinite(est.p_value or math.nan)
