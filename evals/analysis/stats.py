"""The statistics of comparisons: normal-approximation and bootstrap CIs of differences, and verdicts."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Metrics that are a share of items scored 0/1, so a missing stderr can be rebuilt as sqrt(p(1-p)/n).
PROPORTION_METRICS = frozenset({"acc", "acc_norm", "exact_match", "em", "pass@1", "mc1", "contains", "accuracy"})

# Bootstrap resamples are drawn in chunks of at most this many values (rows x samples): ~32 MB of float64.
_CHUNK_VALUES = 4_000_000


@dataclass(frozen=True)
class Estimate:
    """A difference (value - baseline) with its two-sided CI; ci_low/ci_high are None when no CI exists.

    ``method`` says how the CI was obtained (paired | unpaired | bootstrap | none); paired accuracy estimates
    also carry the pair counts, McNemar's p-value (0/1 scores) and, like unpaired ones, the SE and the minimum
    detectable effect (``mde``, see :mod:`evals.analysis.power`).
    """

    value: float | None
    baseline_value: float | None
    delta: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    method: str = "none"
    n_pairs: int | None = None
    n_fixed: int | None = None
    n_broken: int | None = None
    p_value: float | None = None
    se: float | None = None
    mde: float | None = None


def z_value(alpha: float) -> float:
    """The two-sided normal quantile for level ``alpha`` (1.96 for 0.05)."""
    return NormalDist().inv_cdf(1 - alpha / 2)


def standard_error(
    value: float, stderr: float | None, n_samples: int | None, metric: str
) -> tuple[float | None, str | None]:
    """(standard error, how it was obtained): the stored stderr, else the binomial sqrt(p(1-p)/n) of a proportion.

    The binomial fallback applies only to 0/1-scored metrics (``PROPORTION_METRICS``) with a value in [0, 1];
    any other metric without a stored stderr has no CI.
    """
    if stderr is not None and math.isfinite(stderr) and stderr >= 0:
        return stderr, "stderr"
    if metric in PROPORTION_METRICS and n_samples and n_samples > 0 and 0.0 <= value <= 1.0:
        return math.sqrt(value * (1.0 - value) / n_samples), "binomial"
    return None, None


def normal_diff(value: float, se: float | None, baseline: float, baseline_se: float | None, alpha: float) -> Estimate:
    """Difference of two independent estimates with a normal CI, delta ± z·sqrt(se² + se_b²) (method unpaired).

    The fallback when per-question samples are missing: conservative when both runs scored the same items (the
    paired test in :mod:`evals.analysis.paired` is tighter), the safe side for a regression alarm.
    """
    from evals.analysis.power import mde

    delta = value - baseline
    if se is None or baseline_se is None:
        return Estimate(value, baseline, delta)
    se_diff = math.sqrt(se**2 + baseline_se**2)
    half = z_value(alpha) * se_diff
    return Estimate(
        value, baseline, delta, delta - half, delta + half, method="unpaired", se=se_diff, mde=mde(se_diff, alpha)
    )


Statistic = Callable[[Mapping[str, "np.ndarray"]], "np.ndarray"]


def quantile_stat(column: str, q: float) -> Statistic:
    """Statistic: the ``q`` quantile (linear interpolation, as the latency table computes it) of one column."""

    def stat(cols: Mapping[str, np.ndarray]) -> np.ndarray:
        import numpy as np

        return np.asarray(np.quantile(cols[column], q, axis=-1))

    return stat


def ratio_stat(numerator: str, denominator: str) -> Statistic:
    """Statistic: sum(numerator) / sum(denominator) over the sample (e.g. tokens per second of request time)."""

    def stat(cols: Mapping[str, np.ndarray]) -> np.ndarray:
        import numpy as np

        return np.asarray(cols[numerator].sum(axis=-1) / cols[denominator].sum(axis=-1))

    return stat


def bootstrap_diff(
    sample: Mapping[str, np.ndarray],
    baseline: Mapping[str, np.ndarray],
    statistic: Statistic,
    *,
    alpha: float,
    resamples: int,
    seed: int,
    scale: float = 1.0,
    baseline_scale: float = 1.0,
) -> Estimate:
    """Percentile-bootstrap CI of statistic(sample)·scale − statistic(baseline)·baseline_scale.

    Each sample is resampled independently (requests are independent draws), with one seeded generator, so
    the same inputs always give the same CI. Columns of one sample are resampled together (rows stay rows).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    a = scale * float(statistic(sample))
    b = baseline_scale * float(statistic(baseline))
    a_star = scale * _resampled(sample, statistic, resamples, rng)
    b_star = baseline_scale * _resampled(baseline, statistic, resamples, rng)
    diffs = a_star - b_star
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return Estimate(a, b, a - b, float(low), float(high), method="bootstrap")


def _resampled(
    cols: Mapping[str, np.ndarray], statistic: Statistic, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    import numpy as np

    n = len(next(iter(cols.values())))
    out = np.empty(resamples)
    step = max(1, _CHUNK_VALUES // max(n, 1))
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        index = rng.integers(0, n, size=(rows, n))
        out[start : start + rows] = statistic({name: values[index] for name, values in cols.items()})
    return out


def verdict(
    delta: float | None,
    ci_low: float | None,
    ci_high: float | None,
    *,
    higher_is_better: bool,
    threshold: float,
    p_value: float | None = None,
    alpha: float | None = None,
) -> str:
    """regression / improvement / no_change of one metric.

    A change counts only when it is significant AND practical (|delta| ≥ threshold, in the metric's own units).
    Significant: ``p_value < alpha`` when an exact test gave a p-value (McNemar on paired 0/1 scores), else the
    CI excludes 0. Without either (cost, or a metric without stderr) the practical threshold decides alone.
    Direction comes from ``higher_is_better`` (accuracy, throughput) — lower latency and cost are better.
    """
    if delta is None or not math.isfinite(delta):
        return "no_change"
    if p_value is not None and alpha is not None:
        if not p_value < alpha:
            return "no_change"
    elif ci_low is not None and ci_high is not None and ci_low <= 0.0 <= ci_high:
        return "no_change"
    if abs(delta) < threshold or delta == 0.0:
        return "no_change"
    better = delta > 0 if higher_is_better else delta < 0
    return "improvement" if better else "regression"
