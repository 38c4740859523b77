"""Calibration of latency verdicts from a level run as K trials, beside the rule it replaces (a block bootstrap over
the pooled requests), on simulated same-night pairs through the project's own code.

    python bench/trial_calibration.py [--pairs 400] [--trials 5] [--requests 60] [--night-cv 0.10] [--seed 0]
                                      [--part comparisons|limits|both]

A pair is a challenger beside its champion on one night (the serving decision; the models of one DAG run): each
ran every level as K trials of R requests (lognormal TTFT, log-SD 0.5), and each trial as a whole was moved by
exp(drift x N(0, 1)) — a neighbour, a clock, a cache state that lasts minutes, not one request. Both rules then
compare P95 TTFT with ``noise.series_diff`` (the default night CV, as for two runs of one night; ``--night-cv 0``
leaves only the sampling SE, to see each rule's own calibration) and judge the row with ``verdicts.judge_night``:

- ``trials``: the project's rule for a level run as trials (``stats.level_log_se``): the SE of log P95 between the
  K trials (Student t with K - 1 df, Welch-Satterthwaite with the night noise) where it is larger than the
  bootstrap's, else the bootstrap's;
- ``bootstrap``: the block bootstrap over the pooled requests alone: the rule for a level run once, which cannot
  see what moved a whole trial.

Printed per drift: false alarms when nothing changed (target <= 0.05), coverage of the true ratio by the 95 % CI
(target 0.95), power for P95 TTFT +30 %.

``--part limits``: the serving decision's latency limit (``limits.latency_limit``) on one such level, the limit set
at the true P95 of the drifting process (lognormal with log-SD hypot(0.5, drift): what nights like this one show);
a pass there is a false pass (target <= alpha = 0.05). Beside it the pass rate with the limit 30 % above the truth
(power) and the fail rate there (a false fail). ``trials``: order statistics widened by the trials' spread (the
rule); ``order stats``: the pooled requests' order statistics alone (the rule it replaces).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from evals.analysis import noise, stats, verdicts
from evals.analysis.limits import latency_limit
from evals.analysis.options import CompareOptions

ALPHA = 0.05
MIN_LATENCY = 0.05
REQUEST_SD = 0.5
RESAMPLES = 200
P95 = stats.quantile_stat("ttft_ms", 0.95)


def level(rng: np.random.Generator, trials: int, requests: int, drift: float, scale: float) -> dict[str, np.ndarray]:
    """One level's requests, trial after trial: each trial moved as a whole by its drift."""
    shift = np.repeat(np.exp(drift * rng.standard_normal(trials)), requests)
    ttft = 100.0 * scale * shift * np.exp(REQUEST_SD * rng.standard_normal(trials * requests))
    return {"ttft_ms": ttft, "trial": np.repeat(np.arange(trials, dtype=float), requests)}


def sampling(rule: str, sample: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[float, float | None]:
    """The project's level SE (``stats.level_log_se``), told the trials or not."""
    trial = sample["trial"] if rule == "trials" else None
    found = stats.level_log_se(
        {"ttft_ms": sample["ttft_ms"]}, P95, trial=trial, resamples=RESAMPLES, rng=rng, min_rows=10
    )
    assert found is not None
    return found


def pair(rng: np.random.Generator, args: argparse.Namespace, drift: float, step: float) -> dict[str, tuple[bool, str]]:
    """(CI covers the true ratio, verdict) per rule for one challenger/champion pair."""
    champion = level(rng, args.trials, args.requests, drift, 1.0)
    challenger = level(rng, args.trials, args.requests, drift, step)
    values = [float(P95(s)) for s in (challenger, champion)]
    out = {}
    for rule in ("trials", "bootstrap"):
        (se_a, df_a), (se_b, df_b) = (sampling(rule, s, rng) for s in (challenger, champion))
        night = noise.NightNoise(math.log1p(args.night_cv), None, estimated=False)
        diff = noise.series_diff(values[0], se_a, [values[1]], se_b, night, sampling_df=df_a, history_df=df_b)
        est = diff.estimate(ALPHA)
        judged = verdicts.Judged(est, False, MIN_LATENCY * abs(est.baseline_value or 0.0), primary=True)
        verdict = verdicts.judge_night([judged], ALPHA, CompareOptions().primary_alpha_share)[0][0]
        base = est.baseline_value or 1.0
        covered = 1 + (est.ci_low or 0.0) / base <= step <= 1 + (est.ci_high or 0.0) / base
        out[rule] = (covered, verdict)
    return out


def limit_statuses(rng: np.random.Generator, args: argparse.Namespace, drift: float, limit: float) -> dict[str, str]:
    """The latency limit's status per rule for one level of K drifting trials."""
    sample = level(rng, args.trials, args.requests, drift, 1.0)
    ttft, trial = list(sample["ttft_ms"]), [int(t) for t in sample["trial"]]
    return {
        "trials": latency_limit("ttft", None, ttft, limit, ALPHA, trials=trial).status,
        "order stats": latency_limit("ttft", None, ttft, limit, ALPHA).status,
    }


def limits(rng: np.random.Generator, args: argparse.Namespace) -> None:
    print(f"\nlatency limit on one level, {args.pairs} levels per cell, alpha {ALPHA}")
    print(f"{'trial drift (log-SD)':<22} {'figure':<40} {'trials':>8} {'order stats':>12}  target")
    for drift in (0.0, 0.05, 0.15, 0.30):
        truth = 100.0 * math.exp(stats.quantile(0.95, None) * math.hypot(REQUEST_SD, drift))
        at_truth = [limit_statuses(rng, args, drift, truth) for _ in range(args.pairs)]
        roomy = [limit_statuses(rng, args, drift, 1.3 * truth) for _ in range(args.pairs)]
        for figure, results, wanted, target in (
            ("false pass (limit = the true P95)", at_truth, "pass", "<= 0.05"),
            ("power: pass, limit 30 % above it", roomy, "pass", "high"),
            ("false fail, limit 30 % above it", roomy, "fail", "<= 0.05"),
        ):
            cells = [np.mean([r[rule] == wanted for r in results]) for rule in ("trials", "order stats")]
            print(f"{drift:<22.2f} {figure:<40} {cells[0]:>8.3f} {cells[1]:>12.3f}  {target}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400, help="simulated pairs per drift and effect")
    parser.add_argument("--trials", type=int, default=5, help="trials per level (K)")
    parser.add_argument("--requests", type=int, default=60, help="requests per trial (R)")
    parser.add_argument(
        "--night-cv",
        type=float,
        default=CompareOptions().night_cv,
        help="the night CV in the CI (default: the setting's)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=("comparisons", "limits", "both"), default="both")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    if args.part != "limits":
        comparisons(rng, args)
    if args.part != "comparisons":
        limits(rng, args)
    print(f"({time.perf_counter() - started:.0f} s)")


def comparisons(rng: np.random.Generator, args: argparse.Namespace) -> None:
    print(
        f"{args.pairs} same-night pairs per cell, {args.trials} trials x {args.requests} requests a level, "
        f"request log-SD {REQUEST_SD}, night CV in the CI {args.night_cv:.0%}"
    )
    print(f"{'trial drift (log-SD)':<22} {'figure':<34} {'trials':>8} {'bootstrap':>10}  target")
    for drift in (0.0, 0.05, 0.15, 0.30):
        quiet = [pair(rng, args, drift, 1.0) for _ in range(args.pairs)]
        slower = [pair(rng, args, drift, 1.3) for _ in range(args.pairs)]
        for figure, results, score, target in (
            ("false alarm (nothing changed)", quiet, lambda r: r[1] in verdicts.JUDGED, "<= 0.05"),
            ("95 % CI covers the truth", quiet + slower, lambda r: r[0], "0.95"),
            ("power: P95 TTFT +30 %", slower, lambda r: r[1] == "regression", "high"),
        ):
            cells = [np.mean([score(p[rule]) for p in results]) for rule in ("trials", "bootstrap")]
            print(f"{drift:<22.2f} {figure:<34} {cells[0]:>8.3f} {cells[1]:>10.3f}  {target}", flush=True)


if __name__ == "__main__":
    main()
