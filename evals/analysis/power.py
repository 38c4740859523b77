"""Statistical power: the minimum detectable effect of a comparison at a significance level and a power."""

from __future__ import annotations

import math
from statistics import NormalDist

DEFAULT_POWER = 0.8


def mde(se: float | None, alpha: float, power: float = DEFAULT_POWER) -> float | None:
    """The smallest true difference a two-sided test at ``alpha`` detects with probability ``power``.

    For an estimate with standard error ``se`` (normal approximation): (z₁₋α/₂ + z_power) · se — 2.80 · se at
    alpha 0.05 and 80 % power. None when there is no standard error.
    """
    if se is None or not math.isfinite(se) or se < 0:
        return None
    normal = NormalDist()
    return (normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)) * se


def binomial_diff_se(p: float, n: int, baseline_p: float, baseline_n: int) -> float | None:
    """Standard error of the difference of two independent proportions (the unpaired fallback's)."""
    if n <= 0 or baseline_n <= 0 or not (0 <= p <= 1 and 0 <= baseline_p <= 1):
        return None
    return math.sqrt(p * (1 - p) / n + baseline_p * (1 - baseline_p) / baseline_n)
