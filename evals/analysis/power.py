"""Statistical power: the minimum detectable effect of a comparison at a significance level and a power."""

from __future__ import annotations

import math

DEFAULT_POWER = 0.8


def mde(se: float | None, alpha: float, power: float = DEFAULT_POWER, df: float | None = None) -> float | None:
    """The smallest true difference a two-sided test at ``alpha`` detects with probability ``power``.

    For an estimate with standard error ``se``: (q₁₋α/₂ + q_power) · se with normal quantiles — 2.80 · se at alpha
    0.05 and 80 % power — or, when the test is a t with ``df`` degrees of freedom (an SE from a few trials or
    nights), Student's t quantiles, so the MDE widens as its test does (3.72 · se at 4 df). None when there is no
    standard error.
    """
    from evals.analysis.stats import quantile  # stats builds its estimates' MDEs on this module

    if se is None or not math.isfinite(se) or se < 0:
        return None
    return (quantile(1 - alpha / 2, df) + quantile(power, df)) * se


def planning_se(n: int, *, p: float, discordance: float | None = None) -> float | None:
    """The SE of a paired difference of ``n`` scores in [0, 1] to plan with, before looking at tonight's answers.

    With the discordance seen on earlier nights (share of questions whose score differed), √(discordance / n);
    without history, the binomial √(2·p(1−p) / n) of two independent runs at accuracy ``p`` (an upper bound for a
    paired design). Never 0: ``p`` is held within [1/(2n), 1 − 1/(2n)], so an identical rerun does not claim
    unlimited power. None without questions.
    """
    if n <= 0:
        return None
    if discordance is not None and math.isfinite(discordance) and discordance > 0:
        return math.sqrt(min(discordance, 1.0) / n)
    edge = 1.0 / (2 * n)
    q = min(max(p if math.isfinite(p) else 0.5, edge), 1.0 - edge)
    return math.sqrt(2.0 * q * (1.0 - q) / n)
