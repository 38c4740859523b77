"""The serving decision's predictability criteria: P99/P50 TTFT and the error rate against the policy's limits.

Judged like the latency criteria (:func:`evals.analysis.decision.latency_limit`), one-sided at the policy's alpha:
``pass`` when the bound on the bad side is within the limit, ``fail`` when the bound on the good side is beyond it,
``inconclusive`` otherwise (with how many requests a pass would need).

- Tail ratio: distribution-free bounds of the ratio of two quantiles from order statistics, alpha split between
  them (Bonferroni): upper = upper(P99) / lower(P50), lower = lower(P99) / upper(P50).
- Error rate: the Wilson interval (:func:`evals.latency.predictability.wilson_interval`) at the one-sided quantile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from evals.analysis.decision import Criterion, min_samples_for_upper_bound, quantile_bounds
from evals.analysis.policy import PredictabilityLimits
from evals.analysis.serving_cost import Side


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
