"""The serving decision's limit criteria: P95 TTFT/E2E, P99/P50 TTFT and the error rate against the policy's limits.

Each one-sided at the policy's alpha: ``pass`` when the bound on the bad side is within the limit, ``fail`` when the
bound on the good side is beyond it, ``inconclusive`` otherwise (with how many requests a pass would need).

- P95: distribution-free bounds from order statistics, widened by the spread between a level's trials.

- Tail ratio: distribution-free bounds of the ratio of two quantiles from order statistics, alpha split between
  them (Bonferroni): upper = upper(P99) / lower(P50), lower = lower(P99) / upper(P50).
- Error rate: the Wilson interval (:func:`evals.latency.predictability.wilson_interval`) at the one-sided quantile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from evals.analysis.decision import Criterion
from evals.analysis.policy import PredictabilityLimits
from evals.analysis.serving_cost import Side


def quantile_bounds(values: Sequence[float], q: float, alpha: float) -> tuple[float | None, float | None]:
    """One-sided (1 - alpha) bounds of the ``q`` quantile from order statistics (no distribution assumed).

    None where ``values`` are too few for that bound (an upper bound of a P95 at alpha 0.05 needs 59 values).
    """
    import numpy as np
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return None, None
    cdf = binom.cdf(np.arange(n + 1), n, q)  # P(#values <= the true quantile is at most j)
    low_j = np.flatnonzero(cdf <= alpha)
    high_j = np.flatnonzero(cdf >= 1 - alpha)
    low = float(x[low_j.max()]) if len(low_j) else None
    high = float(x[high_j.min()]) if len(high_j) and high_j.min() < n else None
    return low, high


def min_samples_for_upper_bound(q: float, alpha: float) -> int:
    """The fewest values whose largest is a one-sided (1 - alpha) upper bound of the ``q`` quantile."""
    return math.ceil(math.log(alpha) / math.log(q))


MIN_TRIAL_REQUESTS = 10  # a trial with fewer ok requests at the level: no between-trial bound


def trial_bounds(
    samples: Sequence[float], trials: Sequence[int], q: float, alpha: float
) -> tuple[float, float, str] | None:
    """One-sided (1 - alpha) bounds of the pooled ``q`` quantile from its spread between trials, and which trials.

    The pooled quantile x exp(-/+ t(1 - alpha, K - 1) x SE), SE the SD of the K trials' log quantiles over sqrt(K)
    (:func:`evals.analysis.stats.between_trials`). A trial with fewer than ``MIN_TRIAL_REQUESTS`` ok requests has
    no quantile of its own and is left out of the spread (the third element says so: "4 of 5 trials"). None when
    fewer than two trials remain or the labels are not one per sample.
    """
    import numpy as np

    from evals.analysis import stats

    if len(trials) != len(samples) or not samples:
        return None
    values, labels = np.asarray(samples, dtype=float), np.asarray(trials)
    found, counts = np.unique(labels, return_counts=True)
    kept = found[counts >= MIN_TRIAL_REQUESTS]
    if len(kept) < 2:
        return None
    rows = np.isin(labels, kept)
    spread = stats.between_trials(
        {"v": values[rows]}, stats.quantile_stat("v", q), labels[rows], min_rows=MIN_TRIAL_REQUESTS
    )
    if spread is None:
        return None
    se, df = spread
    center, half = float(np.quantile(values, q)), stats.quantile(1 - alpha, df) * se
    which = f"{len(kept)} trials" if len(kept) == len(found) else f"{len(kept)} of {len(found)} trials"
    return center * math.exp(-half), center * math.exp(half), which


def latency_limit(
    name: str,
    point: float | None,
    samples: Sequence[float],
    limit: float,
    alpha: float,
    *,
    trials: Sequence[int] = (),
) -> Criterion:
    """P95 at the reference level <= ``limit``: pass when its upper bound is within, fail when its lower bound isn't.

    Bounds from order statistics over the requests; for a level run as trials (``trials``: each sample's trial),
    the wider of those and :func:`trial_bounds`. The requests of one trial share its conditions (a neighbour, a
    cache state): order statistics over the pooled requests take them as independent and, where the trials
    drifted, pass a P95 that is over the limit far more often than alpha (``bench/trial_calibration.py``).
    """
    if point is None and not samples:
        return Criterion(name, "inconclusive", None, limit=limit, unit="ms", detail="no latency result")
    if not samples:
        status = "pass" if point is not None and point <= limit else "fail"
        return Criterion(name, status, point, limit=limit, unit="ms", detail="no request samples: stored P95 judged")
    low, high = quantile_bounds(samples, 0.95, alpha)
    low_from = high_from = ""  # which rule gave each bound, where the trials' spread did
    across = trial_bounds(samples, trials, 0.95, alpha)
    if across is not None and low is not None and across[0] < low:
        low, low_from = across[0], f" (from the spread between {across[2]})"
    if across is not None and high is not None and across[1] > high:
        high, high_from = across[1], f" (from the spread between {across[2]})"
    if high is not None and high <= limit:
        status, detail = "pass", f"upper bound {high:.1f} ms <= {limit:g} ms{high_from}"
    elif low is not None and low > limit:
        status, detail = "fail", f"over the limit by {low - limit:.1f} ms at least: lower bound {low:.1f} ms{low_from}"
    else:
        need = min_samples_for_upper_bound(0.95, alpha)
        status = "inconclusive"
        short = f"{len(samples)} requests; needs >= {need}"
        detail = f"bounds straddle {limit:g} ms{high_from or low_from}" if high is not None else short
    return Criterion(name, status, point, low, high, limit, "ms", detail)


def tail_ratio_limit(name: str, point: float | None, samples: Sequence[float], limit: float, alpha: float) -> Criterion:
    """P99/P50 of ``samples`` (the reference level's TTFTs) <= ``limit``; ``point``: the stored ratio."""
    from evals.latency.predictability import tail_ratio

    if samples:
        point = tail_ratio(samples)
    if point is None:
        return Criterion(name, "inconclusive", None, limit=limit, unit="ratio", detail="no latency result")
    if not samples:
        status = "pass" if point <= limit else "fail"
        return Criterion(
            name, status, point, limit=limit, unit="ratio", detail="no request samples: stored ratio judged"
        )
    p99_low, p99_high = quantile_bounds(samples, 0.99, alpha / 2)
    p50_low, p50_high = quantile_bounds(samples, 0.50, alpha / 2)
    high = p99_high / p50_low if p99_high is not None and p50_low else None
    low = p99_low / p50_high if p99_low is not None and p50_high else None
    if high is not None and high <= limit:
        status, detail = "pass", f"upper bound {high:.2f} <= {limit:g}"
    elif low is not None and low > limit:
        status, detail = "fail", f"over the limit: lower bound {low:.2f} > {limit:g}"
    else:
        need = min_samples_for_upper_bound(0.99, alpha / 2)
        status = "inconclusive"
        detail = f"bounds straddle {limit:g}" if high is not None else f"{len(samples)} requests; needs >= {need}"
    return Criterion(name, status, point, low, high, limit, "ratio", detail)


def min_requests_for_error_limit(limit: float, alpha: float) -> int:
    """The fewest requests whose Wilson upper bound can be within ``limit``: with no error, z² / (n + z²) <= limit."""
    z = NormalDist().inv_cdf(1 - alpha)
    return math.ceil(z * z * (1 - limit) / limit - 1e-9)


def error_rate_limit(name: str, errors: int | None, n: int | None, limit: float, alpha: float) -> Criterion:
    """``errors`` of ``n`` requests <= ``limit``: pass when the one-sided Wilson upper bound is within it."""
    from evals.latency.predictability import wilson_interval

    if errors is None or not n:
        return Criterion(name, "inconclusive", None, limit=limit, unit="share", detail="no error count tonight")
    low, high = wilson_interval(errors, n, NormalDist().inv_cdf(1 - alpha))
    if low is None or high is None:
        return Criterion(name, "inconclusive", None, limit=limit, unit="share", detail="no requests")
    rate = errors / n
    if high <= limit:
        status, detail = "pass", f"{errors} of {n} requests; upper bound {high:.2%} <= {limit:.2%}"
    elif low > limit:
        status, detail = "fail", f"{errors} of {n} requests; lower bound {low:.2%} > {limit:.2%}"
    else:
        need = min_requests_for_error_limit(limit, alpha)
        status = "inconclusive"
        detail = f"{errors} of {n} requests; CI [{low:.2%}, {high:.2%}] straddles {limit:.2%}" + (
            f" (a pass needs >= {need} requests)" if n < need else ""
        )
    return Criterion(name, status, rate, low, high, limit, "share", detail)


def predictability_criteria(side: Side, limits: PredictabilityLimits, alpha: float) -> list[Criterion]:
    """The criteria ``limits`` set, for the challenger's run ``side``."""
    out = []
    if limits.max_ttft_tail_ratio is not None:
        test = tail_ratio_limit(
            "predictability:ttft_tail_ratio", side.ttft_tail_ratio, side.ttft_ms, limits.max_ttft_tail_ratio, alpha
        )
        out.append(_evidence(test, f"latency_samples {side.run_id} @{side.reference}"))
    if limits.max_error_rate is not None:
        test = error_rate_limit(
            "predictability:error_rate", side.n_errors, side.n_requests, limits.max_error_rate, alpha
        )
        out.append(_evidence(test, f"latency {side.run_id} (every load level)"))
    return out


def _evidence(criterion: Criterion, evidence: str) -> Criterion:
    import dataclasses

    return dataclasses.replace(criterion, evidence=evidence)
