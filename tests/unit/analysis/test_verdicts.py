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


# ---------------------------------------------------------------------------------------------- weighted BH


def _weighted_bh_reference(p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted BH adjusted p-values from Genovese, Roeder & Wasserman's definition (q = p / w, BH step-up on q):
    adjusted(i) = min over j with q_j >= q_i of m q_j / rank(q_j), at most 1. Written out, without scipy."""
    q = np.minimum(p / w, 1.0)
    m = len(q)
    order = np.argsort(q)
    out = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, m * q[i] / rank)
        out[i] = running
    return out


def test_weights_give_the_primary_rows_their_share_and_average_one() -> None:
    flags = [True, False] + [False] * 10 + [True] + [False] * 27  # a 40-row night: headline, reference P95 TTFT
    w = verdicts.weights(flags, 0.5)
    assert w[0] == w[12] == pytest.approx(0.5 * 40 / 2)  # 10: each primary row gets 1/4 of alpha
    assert w[1] == pytest.approx(0.5 * 40 / 38)
    assert np.mean(w) == pytest.approx(1.0)
    assert verdicts.weights(flags, 0.0) == [1.0] * 40  # plain BH
    assert verdicts.weights(flags, 0.05) == [1.0] * 40  # 2 of 40 rows already hold 5 % of alpha: never below 1
    assert verdicts.weights([True] * 3, 0.5) == verdicts.weights([False] * 3, 0.5) == [1.0] * 3
    with pytest.raises(ValueError, match="share"):
        verdicts.weights(flags, 1.0)


def test_weighted_adjustment_matches_the_definition() -> None:
    rng = np.random.default_rng(6)
    for m, share in ((40, 0.5), (400, 0.5), (40, 0.8)):
        p = rng.random(m) ** 3  # some small p-values
        flags = rng.random(m) < 0.1
        flags[0] = True
        adjusted = verdicts.adjust(list(p), None, list(flags), share)
        expected = _weighted_bh_reference(p, np.asarray(verdicts.weights(list(flags), share)))
        assert adjusted == pytest.approx(list(expected))
    # Without primary rows it is plain BH (scipy's, checked against the same reference with unit weights).
    assert verdicts.adjust(list(p), None, None, 0.5) == pytest.approx(list(_weighted_bh_reference(p, np.ones(m))))


def test_a_tied_family_is_primary_when_any_of_its_rows_is() -> None:
    # Two hypotheses, "a" primary through its second row: at share 0.75 the weights are 0.75 × 2 / 1 = 1.5 and 0.5.
    adjusted = verdicts.adjust([0.03, 0.03, 0.02], ["a", "a", "b"], [False, True, False], 0.75)
    expected = _weighted_bh_reference(np.array([0.03, 0.02]), np.array([1.5, 0.5]))
    assert adjusted == pytest.approx([expected[0], expected[0], expected[1]])


def test_weighted_bh_keeps_fdr_and_quiet_nights_under_alpha() -> None:
    # Nights of 200 tests, 20 primary (share 0.5: weight 5, the others 0.56); effects (z + 3) on 10 primary and
    # 30 other hypotheses. FDR stays below alpha; A/A nights of 40 and 400 rows find anything rarely (<= alpha).
    rng = np.random.default_rng(7)
    m, alpha = 200, 0.05
    flags = [i < 20 for i in range(m)]
    fdp = []
    for _ in range(300):
        z = rng.standard_normal(m)
        real = np.zeros(m, dtype=bool)
        real[:10] = real[20:50] = True
        z[real] += 3.0
        found = np.asarray(verdicts.adjust(list(2 * norm.sf(np.abs(z))), None, flags, 0.5), dtype=float) <= alpha
        fdp.append((found & ~real).sum() / max(found.sum(), 1))
    assert np.mean(fdp) <= 0.045
    for rows in (40, 400):
        quiet = [i % 20 == 0 for i in range(rows)]
        hits = [min(verdicts.adjust(list(rng.random(rows)), None, quiet, 0.5)) <= alpha for _ in range(400)]  # type: ignore[type-var]
        assert np.mean(hits) <= 0.075


def test_a_lone_primary_change_is_found_as_often_as_its_share_of_alpha_allows() -> None:
    # The only change of a 40-row night: a headline at z = 3.47 (3 points, 2,000 questions, 85 % agreement). With
    # share 0.5 and 2 primary rows it is tested at about alpha × 0.5 / 2 = 0.0125 (two-sided): power
    # Φ(3.47 − z_0.99375) = 0.836; plain BH tests it at alpha / 40: 0.598.
    rng = np.random.default_rng(8)
    flags = [i in (0, 12) for i in range(40)]
    nights = 3000
    found = {0.5: 0, 0.0: 0}
    for _ in range(nights):
        z = rng.standard_normal(40)
        z[0] += 3.4745
        p = list(2 * norm.sf(np.abs(z)))
        for share in found:
            found[share] += (verdicts.adjust(p, None, flags, share)[0] or 1.0) <= 0.05
    level = {0.5: 0.05 * 0.5 / 2, 0.0: 0.05 / 40}  # the lone primary's two-sided level when nothing else is found
    expected = {share: norm.sf(norm.isf(level[share] / 2) - 3.4745) for share in found}
    assert expected[0.5] == pytest.approx(0.836, abs=0.001) and expected[0.0] == pytest.approx(0.598, abs=0.001)
    for share, n in found.items():
        assert n / nights == pytest.approx(expected[share], abs=0.03)  # binomial SE ~0.009; others found add a bit
