"""Calibration of the nightly verdicts: simulated nights through the comparison functions, beside round 2's rule.

    python bench/verdict_calibration.py [--nights 200] [--seed 0]

Seeded; a few minutes on 2 cores. Each simulated night has 40 or 400 rows: 30 % accuracy rows (2,000 questions,
85 % agreement between the two runs) and 70 % P95 TTFT rows (100 requests a level; heavy tails: lognormal or
Pareto; a third of the levels with AR(1) phi 0.8 correlated requests), each series drifting from night to night
(log-SD 0.10) with 14 nights of the baseline revision's history.

- A/A nights (nothing changed): the share of nights with at least one false regression/improvement.
- A/B nights (10 % of rows changed: accuracy -3 points, P95 TTFT +30 %): FDR (false findings / findings) and power.
- Group CIs: coverage of the 95 % CI of a group of 2, 3 or 5 subtasks (independent questions).

The current rule is the project's: :func:`evals.analysis.paired.paired_diff`, :mod:`evals.analysis.noise`,
:func:`evals.analysis.stats.bootstrap_log`, :func:`evals.analysis.verdicts.judge_night` (Benjamini-Hochberg).
Round 2's rule is kept below as the reference (copied from git: per-row p < alpha or CI excludes 0, CR1 group SEs
with z, percentile bootstrap of tonight's requests against last night's).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evals.analysis import noise, stats, verdicts
from evals.analysis.paired import Pairs, paired_diff

ALPHA = 0.05
MIN_POINTS = 0.01  # 1 accuracy point
MIN_LATENCY = 0.05  # 5 % of the baseline
QUESTIONS = 2000
AGREEMENT = 0.85
BASE_ACCURACY = 0.70
REQUESTS = 100
HISTORY = 14
NIGHT_SD = 0.10
RESAMPLES = 200
ACCURACY_SHARE = 0.3


# ---------------------------------------------------------------------------------------------- round 2's rule


def r2_verdict(est: stats.Estimate, higher_is_better: bool, threshold: float) -> str:
    """Round 2's stats.verdict: McNemar p < alpha where it exists, else the CI excludes 0; then |delta| ≥ threshold."""
    delta = est.delta
    if delta is None or not math.isfinite(delta):
        return "no_change"
    if est.p_value is not None:
        if not est.p_value < ALPHA:
            return "no_change"
    elif est.ci_low is not None and est.ci_high is not None and est.ci_low <= 0.0 <= est.ci_high:
        return "no_change"
    if abs(delta) < threshold or delta == 0.0:
        return "no_change"
    return "improvement" if (delta > 0) == higher_is_better else "regression"


def r2_group_ci(d: np.ndarray, cluster: np.ndarray) -> tuple[float, float]:
    """Round 2's group CI: CR1 cluster-robust SE with the subtasks as clusters, z = 1.96."""
    n = len(d)
    _, index = np.unique(cluster, return_inverse=True)
    sums = np.bincount(index, weights=d - d.mean())
    groups = len(sums)
    se = math.sqrt(groups / (groups - 1) * float((sums**2).sum())) / n
    half = stats.z_value(ALPHA) * se
    return float(d.mean() - half), float(d.mean() + half)


# ---------------------------------------------------------------------------------------------- simulation


def accuracy_pair(rng: np.random.Generator, drop: float) -> tuple[np.ndarray, np.ndarray]:
    """(new, baseline) 0/1 scores: 15 % of questions discordant, split so that the true change is ``drop``."""
    baseline = (rng.random(QUESTIONS) < BASE_ACCURACY).astype(float)
    discordant = 1 - AGREEMENT
    broken, fixed = (discordant - drop) / 2, (discordant + drop) / 2  # P(right->wrong), P(wrong->right) overall
    u = rng.random(QUESTIONS)
    flip = np.where(baseline == 1.0, u < broken / BASE_ACCURACY, u < fixed / (1 - BASE_ACCURACY))
    return np.where(flip, 1.0 - baseline, baseline), baseline


def requests(rng: np.random.Generator, kind: int, scale: np.ndarray) -> np.ndarray:
    """TTFT samples (ms), shape (nights, requests): lognormal, Pareto, AR(1)-correlated lognormal, or (kind 3) a
    well-measured level (300 requests, log-SD 0.3) whose series' night-to-night CV is the drift's 10 %."""
    nights = len(scale)
    if kind == 3:
        return 100.0 * scale[:, None] * np.exp(0.3 * rng.standard_normal((nights, 300)))
    if kind == 0:
        x = np.exp(0.5 * rng.standard_normal((nights, REQUESTS)))
    elif kind == 1:
        x = 1.0 + rng.pareto(2.5, (nights, REQUESTS))
    else:
        phi, e = 0.8, rng.standard_normal((nights, REQUESTS))
        z = np.empty_like(e)
        z[:, 0] = e[:, 0]
        for i in range(1, REQUESTS):
            z[:, i] = phi * z[:, i - 1] + math.sqrt(1 - phi**2) * e[:, i]
        x = np.exp(0.5 * z)
    return 100.0 * scale[:, None] * x


P95 = stats.quantile_stat("ttft_ms", 0.95)


@dataclass
class Row:
    truth: str  # none | regression
    current: str
    r2: str


def latency_row(rng: np.random.Generator, kind: int, step: float) -> tuple[Row, tuple[stats.Estimate, float]]:
    """One P95 TTFT comparison: HISTORY nights of the baseline revision, then tonight (x ``step``)."""
    scale = np.exp(NIGHT_SD * rng.standard_normal(HISTORY + 1))
    scale[-1] *= step
    samples = requests(rng, kind, scale)
    p95 = np.quantile(samples, 0.95, axis=1)
    tonight, last = {"ttft_ms": samples[-1]}, {"ttft_ms": samples[-2]}
    se = [float(np.std(stats.bootstrap_log(s, P95, resamples=RESAMPLES, rng=rng), ddof=1)) for s in (tonight, last)]
    series_noise = noise.night_noise([p95[:-1]], default_cv=0.10, min_history=5)
    diff = noise.series_diff(float(p95[-1]), se[0], list(p95[:-1]), se[1], series_noise)
    est = diff.estimate(ALPHA)
    old = stats.bootstrap_diff(tonight, last, P95, alpha=ALPHA, resamples=RESAMPLES, seed=int(rng.integers(1 << 31)))
    truth = "regression" if step != 1.0 else "none"
    return Row(truth, "", r2_verdict(old, False, MIN_LATENCY * abs(old.baseline_value or 0.0))), (
        est,
        MIN_LATENCY * abs(est.baseline_value or 0.0),
    )


def accuracy_row(rng: np.random.Generator, drop: float) -> tuple[Row, tuple[stats.Estimate, float]]:
    new, base = accuracy_pair(rng, drop)
    est = paired_diff(Pairs(new, base), alpha=ALPHA)
    truth = "regression" if drop != 0 else "none"
    return Row(truth, "", r2_verdict(est, True, MIN_POINTS)), (est, MIN_POINTS)


def night(rng: np.random.Generator, rows: int, changed: float) -> list[Row]:
    """One night of ``rows`` comparisons, a share ``changed`` of them with an injected regression.

    A/A nights (``changed`` 0) mix heavy-tailed and correlated levels of 100 requests; A/B nights measure the
    issue's power case, series with a 10 % night-to-night CV (kind 3).
    """
    out: list[Row] = []
    judged: list[verdicts.Judged] = []
    n_accuracy = round(ACCURACY_SHARE * rows)
    for i in range(rows):
        effect = rng.random() < changed
        if i < n_accuracy:
            row, (est, threshold) = accuracy_row(rng, -0.03 if effect else 0.0)
            judged.append(verdicts.Judged(est, True, threshold))
        else:
            row, (est, threshold) = latency_row(rng, i % 3 if changed == 0 else 3, 1.3 if effect else 1.0)
            judged.append(verdicts.Judged(est, False, threshold))
        out.append(row)
    for row, (verdict, _) in zip(out, verdicts.judge_night(judged, ALPHA), strict=True):
        row.current = verdict
    return out


def rates(nights: list[list[Row]], rule: Callable[[Row], str]) -> dict[str, float]:
    """Share of nights with >= 1 false finding, FDR (mean of false/findings), power per kind of injected change."""
    any_false, fdp = [], []
    found = {"accuracy": [0, 0], "latency": [0, 0]}
    for rows in nights:
        findings = [r for r in rows if rule(r) in verdicts.JUDGED]
        false = [r for r in findings if r.truth == "none" or rule(r) != r.truth]
        any_false.append(bool(false))
        fdp.append(len(false) / max(len(findings), 1))
        n_accuracy = round(ACCURACY_SHARE * len(rows))
        for i, r in enumerate(rows):
            if r.truth != "none":
                kind = found["accuracy" if i < n_accuracy else "latency"]
                kind[0] += rule(r) == r.truth
                kind[1] += 1
    return {
        "false_night": float(np.mean(any_false)),
        "fdr": float(np.mean(fdp)),
        **{f"power_{k}": (v[0] / v[1] if v[1] else math.nan) for k, v in found.items()},
    }


def coverage(rng: np.random.Generator, groups: int, trials: int, alike: bool) -> tuple[float, float]:
    """(current, round 2) coverage of the 95 % CI of a group's paired difference, independent questions.

    ``alike``: subtasks of one size and one accuracy (the issue's case); else sizes 100-400, accuracy 0.4-0.9.
    """
    sizes = np.full(groups, 250) if alike else rng.integers(100, 400, size=groups)
    base_p = np.full(groups, 0.7) if alike else rng.uniform(0.4, 0.9, size=groups)
    broken = np.full(groups, 0.06) if alike else rng.uniform(0.03, 0.10, size=groups)
    fixed = np.full(groups, 0.05) if alike else rng.uniform(0.03, 0.10, size=groups)
    cluster = np.repeat(np.arange(groups), sizes)
    p = np.repeat(base_p, sizes)
    truth = float(np.sum(sizes * (fixed - broken)) / sizes.sum())
    hits = [0, 0]
    for _ in range(trials):
        baseline = (rng.random(len(p)) < p).astype(float)
        u = rng.random(len(p))
        flip = np.where(baseline == 1.0, u < np.repeat(broken, sizes) / p, u < np.repeat(fixed, sizes) / (1 - p))
        new = np.where(flip, 1.0 - baseline, baseline)
        est = paired_diff(Pairs(new, baseline, cluster), alpha=ALPHA)
        hits[0] += est.ci_low <= truth <= est.ci_high  # type: ignore[operator]
        low, high = r2_group_ci(new - baseline, cluster)
        hits[1] += low <= truth <= high
    return hits[0] / trials, hits[1] / trials


def line(setting: str, figure: str, current: float, reference: float, target: str) -> None:
    print(f"{setting:<34} {figure:<28} {current:>8.3f} {reference:>8.3f}  {target}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nights", type=int, default=100, help="simulated nights of 40 rows per setting (a quarter for 400 rows)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(f"{'setting':<34} {'figure':<28} {'current':>8} {'round 2':>8}  target")
    for rows in (40, 400):
        nights = max(args.nights // (4 if rows == 400 else 1), 20)
        aa = [night(rng, rows, 0.0) for _ in range(nights)]
        now, old = rates(aa, lambda r: r.current), rates(aa, lambda r: r.r2)
        setting = f"A/A, {rows} rows, {nights} nights"
        line(setting, "nights with >= 1 false", now["false_night"], old["false_night"], "<= 0.05")
        ab = [night(rng, rows, 0.10) for _ in range(nights)]
        now, old = rates(ab, lambda r: r.current), rates(ab, lambda r: r.r2)
        line(f"A/B 10 % changed, {rows} rows", "FDR", now["fdr"], old["fdr"], "<= 0.05")
        line("", "power: accuracy -3 points", now["power_accuracy"], old["power_accuracy"], ">= 0.80")
        line("", "power: P95 TTFT +30 %", now["power_latency"], old["power_latency"], ">= 0.80")
    for alike in (True, False):
        for groups in (2, 3, 5):
            now_c, old_c = coverage(rng, groups, 2000, alike)
            setting = f"group of {groups} subtasks" + (", alike" if alike else ", mixed")
            line(setting, "95 % CI coverage", now_c, old_c, "0.94-0.96")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
