"""The statistics of comparisons: estimates, normal/t and bootstrap CIs of differences, p-values."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Metrics that are a share of items scored 0/1, so a missing stderr can be rebuilt as sqrt(p(1-p)/n).
PROPORTION_METRICS = frozenset(
    {
        "acc",
        "acc_norm",
        "exact_match",
        "em",
        "pass@1",
        "mc1",
        "contains",
        "accuracy",
        "refusal_rate",
        "over_refusal_rate",
    }
)

# Bootstrap resamples are drawn in chunks of at most this many values (rows x samples): ~32 MB of float64.
_CHUNK_VALUES = 4_000_000


@dataclass(frozen=True)
class Estimate:
    """A difference (value - baseline) with its two-sided CI, its SE and p-value; None where they do not exist.

    ``method`` says how the CI was obtained (paired | stratified | clustered | unpaired | bootstrap | none).
    ``se`` is in the metric's units (a log-scale test reports its delta-method SE) and ``df`` is the degrees of
    freedom of its t reference (None: normal). ``p_value`` tests "no change" (McNemar's exact test for paired 0/1
    scores, else t or z). ``mde`` is the minimum detectable effect from the planning variance (see
    :mod:`evals.analysis.power`). Latency and cost estimates carry the series' night-to-night noise: ``night_se``
    (its share of the SE), ``night_cv`` and ``n_history``. ``tested_with`` names another row of the same pair that tests
    the same hypothesis (cost at an unchanged price is throughput's test): error control counts the two once.
    ``notes`` says, in words, what went into the estimate or why there is none.
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
    df: float | None = None
    night_se: float | None = None
    night_cv: float | None = None
    n_history: int | None = None
    tested_with: str | None = None
    notes: str | None = None


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
        return Estimate(value, baseline, delta, notes="no standard error for one of the runs: no test")
    se_diff = math.sqrt(se**2 + baseline_se**2)
    if not se_diff > 0:
        return Estimate(value, baseline, delta, notes="standard error 0: no test")
    half = z_value(alpha) * se_diff
    return Estimate(
        value,
        baseline,
        delta,
        delta - half,
        delta + half,
        method="unpaired",
        p_value=two_sided_p(delta, se_diff),
        se=se_diff,
        mde=mde(se_diff, alpha),
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


def _rows(cols: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(cols.values())))


def _resampled(
    cols: Mapping[str, np.ndarray], statistic: Statistic, resamples: int, rng: np.random.Generator, block: int = 1
) -> np.ndarray:
    """``resamples`` values of the statistic; ``block`` > 1 draws circular blocks of consecutive rows."""
    import numpy as np

    n = _rows(cols)
    out = np.empty(resamples)
    step = max(1, _CHUNK_VALUES // max(n, 1))
    blocks = -(-n // block)
    offsets = np.arange(block)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        if block == 1:
            index = rng.integers(0, n, size=(rows, n))
        else:
            starts = rng.integers(0, n, size=(rows, blocks, 1))
            index = ((starts + offsets) % n).reshape(rows, -1)[:, :n]
        out[start : start + rows] = statistic({name: values[index] for name, values in cols.items()})
    return out


def quantile(level: float, df: float | None) -> float:
    """The ``level`` quantile of Student's t with ``df`` degrees of freedom (normal when df is None or huge)."""
    if df is None or not math.isfinite(df) or df > 1e6:
        return NormalDist().inv_cdf(level)
    from scipy.stats import t

    return float(t.ppf(level, df))


def two_sided_p(delta: float, se: float, df: float | None = None) -> float:
    """Two-sided p-value of ``delta`` against 0 with standard error ``se`` (t with ``df``, else normal)."""
    if se <= 0 or not math.isfinite(se):
        return math.nan
    z = abs(delta) / se
    if df is None or not math.isfinite(df) or df > 1e6:
        return 2.0 * (1.0 - NormalDist().cdf(z))
    from scipy.stats import t

    return float(2.0 * t.sf(z, df))


def satterthwaite(parts: Sequence[tuple[float, float | None]]) -> float | None:
    """Welch-Satterthwaite degrees of freedom of a sum of variances ``(variance, df)`` (df None: known exactly)."""
    total = sum(v for v, _ in parts)
    denominator = sum(v**2 / df for v, df in parts if df is not None and df > 0)
    if total <= 0 or denominator <= 0:
        return None
    return total**2 / denominator


def block_length(n: int) -> int:
    """Block length of the circular block bootstrap over ``n`` consecutive requests: about n^(1/2), at least 1.

    Requests of one level are not independent (a slow minute slows its neighbours): blocks keep that dependence,
    so the bootstrap's spread does not shrink as if every request were a fresh draw.
    """
    return max(1, round(math.sqrt(n)))


def bootstrap_log(
    sample: Mapping[str, np.ndarray], statistic: Statistic, *, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Circular-block-bootstrap replicates of log(statistic(sample)) (rows stay rows, request order kept in blocks)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(_resampled(sample, statistic, resamples, rng, block=block_length(_rows(sample))))


def between_trials(
    sample: Mapping[str, np.ndarray], statistic: Statistic, trial: np.ndarray, *, min_rows: int
) -> tuple[float, float] | None:
    """SE of log(statistic) from a level run as K >= 2 independent trials: the SD of the trials' log statistics
    over sqrt(K), with K - 1 degrees of freedom (a Student-t CI). It sees what moves a whole trial (a neighbour, a
    cache state), which a bootstrap over one run's requests cannot. None with one trial, a trial of fewer than
    ``min_rows`` rows, or a statistic that is not positive."""
    import numpy as np

    logs = []
    for label in np.unique(trial):
        rows = trial == label
        if rows.sum() < min_rows:
            return None
        value = float(statistic({name: values[rows] for name, values in sample.items()}))
        if not (value > 0 and math.isfinite(value)):
            return None
        logs.append(math.log(value))
    if len(logs) < 2:
        return None
    return float(np.std(logs, ddof=1) / math.sqrt(len(logs))), float(len(logs) - 1)


def level_log_se(
    sample: Mapping[str, np.ndarray],
    statistic: Statistic,
    *,
    trial: np.ndarray | None,
    resamples: int,
    rng: np.random.Generator,
    min_rows: int,
) -> tuple[float, float | None] | None:
    """Sampling SE of log(statistic) of one load level, with its degrees of freedom (None: taken as known).

    The circular block bootstrap over the level's requests; for a level run as trials, the between-trial SE
    (:func:`between_trials`, t with K - 1 df) where that is larger. The larger, not the trials' alone: the level's
    value is the statistic of the pooled requests, which follows its slowest trials more than the trials' mean
    does (measured in ``bench/trial_calibration.py``). None without a finite bootstrap.
    """
    import numpy as np

    reps = bootstrap_log(sample, statistic, resamples=resamples, rng=rng)
    reps = reps[np.isfinite(reps)]
    if len(reps) < 2:
        return None
    boot = float(reps.std(ddof=1))
    across = None if trial is None else between_trials(sample, statistic, trial, min_rows=min_rows)
    return across if across is not None and across[0] > boot else (boot, None)
