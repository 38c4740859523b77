"""Calibration of the nightly verdicts and change points: simulated nights through the project's own code, each
figure beside the rule it replaces and round 2's.

    python bench/verdict_calibration.py [--nights 200] [--series 200] [--seed 0]

Seeded; minutes on 2 cores. A night is made of models of 40 rows each (40 rows: one model; 400 rows: ten): a model's
headline accuracy and 11 per-task accuracy rows (2,000 questions, 85 % agreement between the two runs), its P95 TTFT
at the reference level and 27 other latency rows (100 requests a level; heavy tails: lognormal or Pareto; a third of
the levels with AR(1) phi 0.8 correlated requests), each series drifting from night to night (log-SD 0.10) with 14
nights of the baseline revision's history. The headline and the reference-level P95 TTFT are the night's primary
rows (weighted BH gives them ``CompareOptions.primary_alpha_share`` of alpha).

- A/A nights (nothing changed): the share of nights with at least one false regression/improvement.
- A/B nights (10 % of rows changed: accuracy -3 points, P95 TTFT +30 % on series with a 10 % night-to-night CV;
  half of the primary rows, 7.9 % of the others): FDR (false findings / findings) and power per kind of row.
- One change a night: an A/A night whose headline accuracy dropped 3 points (or whose reference P95 TTFT rose 30 %),
  the hardest case for error control (nothing else is found, so BH's line stays at its lowest).
- Change points (:func:`evals.analysis.changepoints.detect`): a sustained +15 % step at 10 % CV confirmed within 5
  nights (14 or 50 nights before it); confirmed changes on step-free series (at one night, and over 5 nights); a
  +30 % outlier on the latest of 60 nights (5 % CV); AR(1) phi 0.7 drift.
- Group CIs: coverage of the 95 % CI of a group of 2, 3 or 5 subtasks (independent questions).

Columns: ``new`` is the project's rule (weighted BH, the change-point defaults); ``replaced`` the rule it replaces
(plain BH, ``primary_alpha_share`` 0; change points with ``confirm_pvalue`` = ``tail_pvalue``); ``round 2`` the
per-row rule of round 2, kept below as the reference (copied from git: per-row p < alpha or CI excludes 0, CR1 group
SEs with z, percentile bootstrap of tonight's requests against last night's).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from evals.analysis import noise, stats, verdicts
from evals.analysis.changepoints import ChangePointOptions, detect
from evals.analysis.options import CompareOptions
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


ROLES = ("headline", "task", "reference", "latency")  # a model's rows: see ROLE_OF
MODEL_ROWS = 40
PRIMARY_CHANGED = 0.5  # A/B nights: the share of primary rows changed (the night as a whole: 10 %)
TASK_ROWS = 11  # per-task accuracy rows after the headline; then the reference-level P95 TTFT, then other latency


def role_of(i: int) -> str:
    j = i % MODEL_ROWS
    return "headline" if j == 0 else "task" if j <= TASK_ROWS else "reference" if j == TASK_ROWS + 1 else "latency"


@dataclass
class Row:
    truth: str  # none | regression
    role: str
    judged: verdicts.Judged
    r2: str  # round 2's verdict (per row, no error control)


def latency_row(rng: np.random.Generator, kind: int, step: float, primary: bool) -> Row:
    """One P95 TTFT comparison: HISTORY nights of the baseline revision, then tonight (x ``step``)."""
    scale = np.exp(NIGHT_SD * rng.standard_normal(HISTORY + 1))
    scale[-1] *= step
    samples = requests(rng, kind, scale)
    p95 = np.quantile(samples, 0.95, axis=1)
    tonight, last = {"ttft_ms": samples[-1]}, {"ttft_ms": samples[-2]}
    se = [float(np.std(stats.bootstrap_log(s, P95, resamples=RESAMPLES, rng=rng), ddof=1)) for s in (tonight, last)]
    series_noise = noise.night_noise([p95[:-1]], default_cv=0.10, min_history=5)
    est = noise.series_diff(float(p95[-1]), se[0], list(p95[:-1]), se[1], series_noise).estimate(ALPHA)
    old = stats.bootstrap_diff(tonight, last, P95, alpha=ALPHA, resamples=RESAMPLES, seed=int(rng.integers(1 << 31)))
    judged = verdicts.Judged(est, False, MIN_LATENCY * abs(est.baseline_value or 0.0), primary=primary)
    r2 = r2_verdict(old, False, MIN_LATENCY * abs(old.baseline_value or 0.0))
    return Row("regression" if step != 1.0 else "none", "reference" if primary else "latency", judged, r2)


def accuracy_row(rng: np.random.Generator, drop: float, primary: bool) -> Row:
    new, base = accuracy_pair(rng, drop)
    est = paired_diff(Pairs(new, base), alpha=ALPHA)
    judged = verdicts.Judged(est, True, MIN_POINTS, primary=primary)
    truth = "regression" if drop != 0 else "none"
    return Row(truth, "headline" if primary else "task", judged, r2_verdict(est, True, MIN_POINTS))


def night(rng: np.random.Generator, rows: int, changed: float) -> list[Row]:
    """One night of ``rows`` comparisons (models of MODEL_ROWS rows), a share ``changed`` with an injected regression.

    A/A nights (``changed`` 0) mix heavy-tailed and correlated levels of 100 requests; A/B nights measure the
    issue's power case, series with a 10 % night-to-night CV (kind 3). On A/B nights a primary row is changed with
    probability PRIMARY_CHANGED and the others so that ``changed`` of all rows are (enough changed primary rows to
    measure their power; a regression of a checkpoint shows in its headline more often than in one of its tasks).
    """
    primary_rows = 2 * rows // MODEL_ROWS
    primary = PRIMARY_CHANGED if changed else 0.0
    other = (changed * rows - primary * primary_rows) / (rows - primary_rows)
    out: list[Row] = []
    for i in range(rows):
        role = role_of(i)
        effect = rng.random() < (primary if role in ("headline", "reference") else other)
        if role in ("headline", "task"):
            out.append(accuracy_row(rng, -0.03 if effect else 0.0, role == "headline"))
        else:
            kind = i % 3 if changed == 0 else 3
            out.append(latency_row(rng, kind, 1.3 if effect else 1.0, role == "reference"))
    return out


RULES = {"new": CompareOptions().primary_alpha_share, "replaced": 0.0}  # primary rows' share of alpha


def verdicts_of(rows: list[Row], share: float) -> list[str]:
    return [v for v, _ in verdicts.judge_night([r.judged for r in rows], ALPHA, share)]


def rates(nights: list[list[Row]], rule: str) -> dict[str, float]:
    """Share of nights with >= 1 false finding, FDR (mean of false/findings), power per role of an injected change."""
    any_false, fdp = [], []
    found = {role: [0, 0] for role in ROLES}
    for rows in nights:
        said = [r.r2 for r in rows] if rule == "round 2" else verdicts_of(rows, RULES[rule])
        findings = [(r, v) for r, v in zip(rows, said, strict=True) if v in verdicts.JUDGED]
        false = [r for r, v in findings if r.truth == "none" or v != r.truth]
        any_false.append(bool(false))
        fdp.append(len(false) / max(len(findings), 1))
        for r, v in zip(rows, said, strict=True):
            if r.truth != "none":
                found[r.role][0] += v == r.truth
                found[r.role][1] += 1
    return {
        "false_night": float(np.mean(any_false)),
        "fdr": float(np.mean(fdp)),
        **{f"power_{k}": (v[0] / v[1] if v[1] else math.nan) for k, v in found.items()},
    }


def one_change(rng: np.random.Generator, quiet: list[list[Row]], role: str) -> dict[str, float]:
    """Power for the only change of a night: each A/A night with its first ``role`` row replaced by a changed one."""
    hits = dict.fromkeys([*RULES, "round 2"], 0)
    index = 0 if role == "headline" else TASK_ROWS + 1
    for rows in quiet:
        changed = accuracy_row(rng, -0.03, True) if role == "headline" else latency_row(rng, 3, 1.3, True)
        night_rows = [*rows[:index], changed, *rows[index + 1 :]]
        for rule, share in RULES.items():
            hits[rule] += verdicts_of(night_rows, share)[index] == "regression"
        hits["round 2"] += changed.r2 == "regression"
    return {rule: n / len(quiet) for rule, n in hits.items()}


# ---------------------------------------------------------------------------------------------- change points


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    z = np.zeros(n)
    e = rng.standard_normal(n)
    z[0] = e[0]
    for i in range(1, n):
        z[i] = phi * z[i - 1] + math.sqrt(1 - phi**2) * e[i]
    return z


def change_points(series: int, seed: int, options: ChangePointOptions) -> dict[str, float]:
    """The change-point figures of ``options`` on seeded series (the same series for every rule)."""

    def confirmed(values: np.ndarray, near: int | None = None) -> bool:
        return any(c.confirmed and (near is None or abs(c.index - near) <= 1) for c in detect(list(values), options))

    out: dict[str, float] = {}
    for history in (14, 50):
        rng = np.random.default_rng([seed, history])
        step = quiet_any = quiet_last = 0
        for _ in range(series):
            x = 100 * (1 + 0.10 * rng.standard_normal(history + 5))
            x[history:] *= 1.15
            step += any(confirmed(x[: history + k], history) for k in range(1, 6))
            y = 100 * (1 + 0.10 * rng.standard_normal(history + 5))
            flags = [confirmed(y[: history + k]) for k in range(1, 6)]
            quiet_any += any(flags)
            quiet_last += flags[-1]
        out[f"step_{history}"] = step / series
        out[f"quiet_any_{history}"] = quiet_any / series
        out[f"quiet_last_{history}"] = quiet_last / series
    rng = np.random.default_rng([seed, 60])
    outlier = drift = 0
    for _ in range(series):
        x = 100 * (1 + 0.05 * rng.standard_normal(60))
        x[-1] *= 1.3
        outlier += confirmed(x)
        drift += confirmed(100 * (1 + 0.05 * _ar1(rng, 60, 0.7)))
    out["outlier"] = outlier / series
    out["drift"] = drift / series
    return out


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


def line(setting: str, figure: str, figures: tuple[float | None, ...], target: str) -> None:
    cells = " ".join(f"{x:>8.3f}" if x is not None else f"{'-':>8}" for x in figures)
    print(f"{setting:<34} {figure:<40} {cells}  {target}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nights", type=int, default=200, help="simulated nights of 40 rows per setting (a quarter for 400 rows)"
    )
    parser.add_argument("--series", type=int, default=200, help="simulated series per change-point figure")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(f"{'setting':<34} {'figure':<40} {'new':>8} {'replaced':>8} {'round 2':>8}  target")
    for rows in (40, 400):
        nights = max(args.nights // (4 if rows == 400 else 1), 20)
        aa = [night(rng, rows, 0.0) for _ in range(nights)]
        figures = [rates(aa, rule) for rule in ("new", "replaced", "round 2")]
        line(f"A/A, {rows} rows, {nights} nights", "nights with >= 1 false", _get(figures, "false_night"), "<= 0.05")
        for role, label in (("headline", "(a) headline accuracy -3 points"), ("reference", "(b) ref. P95 TTFT +30 %")):
            found = one_change(rng, aa, role)
            line(f"one change a night, {rows} rows", f"power: {label}", tuple(found.values()), ">= 0.80")
        ab = [night(rng, rows, 0.10) for _ in range(nights)]
        figures = [rates(ab, rule) for rule in ("new", "replaced", "round 2")]
        setting = f"A/B 10 % changed, {rows} rows"
        line(setting, "FDR", _get(figures, "fdr"), "<= 0.05")
        line("", "power: (a) headline accuracy -3 points", _get(figures, "power_headline"), ">= 0.80")
        line("", "power: (b) ref. P95 TTFT +30 %", _get(figures, "power_reference"), ">= 0.80")
        line("", "power: task accuracy -3 points", _get(figures, "power_task"), "")
        line("", "power: other P95 TTFT +30 %", _get(figures, "power_latency"), "")
    # Change points: the default rule, and the same detector with a looser test of a step 3-5 nights old.
    print(f"{'change points':<34} {'figure':<40} {'default':>8} {'p 0.01':>8} {'p 0.02':>8}")
    cps = [
        change_points(
            args.series, args.seed, replace(ChangePointOptions(), confirm_pvalue=p) if p else ChangePointOptions()
        )
        for p in (None, 0.01, 0.02)
    ]
    for key, setting, figure, target in (
        ("step_14", "+15 % step, 10 % CV, 14 nights", "(c) confirmed within 5 nights", ">= 0.80"),
        ("step_50", "+15 % step, 10 % CV, 50 nights", "(c) confirmed within 5 nights", ">= 0.80"),
        ("quiet_last_14", "no step, 10 % CV, 19 nights", "false change confirmed (latest night)", "low"),
        ("quiet_any_14", "", "false change confirmed (any of 5 nights)", "low"),
        ("quiet_last_50", "no step, 10 % CV, 55 nights", "false change confirmed (latest night)", "low"),
        ("quiet_any_50", "", "false change confirmed (any of 5 nights)", "low"),
        ("outlier", "+30 % outlier on night 60, 5 % CV", "(d) confirmed change", "<= 0.05"),
        ("drift", "AR(1) phi 0.7 drift, 60 nights", "confirmed change", "low"),
    ):
        line(setting, figure, tuple(cp[key] for cp in cps), target)
    print(f"{'':<34} {'':<40} {'new':>8} {'replaced':>8} {'round 2':>8}")
    for alike in (True, False):
        for groups in (2, 3, 5):
            now_c, old_c = coverage(rng, groups, 2000, alike)
            setting = f"group of {groups} subtasks" + (", alike" if alike else ", mixed")
            line(setting, "95 % CI coverage", (now_c, now_c, old_c), "0.94-0.96")
    print(f"({time.perf_counter() - started:.0f} s)")


def _get(figures: list[dict[str, float]], key: str) -> tuple[float, ...]:
    return tuple(f[key] for f in figures)


if __name__ == "__main__":
    main()
