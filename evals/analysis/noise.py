"""Night-to-night noise of latency and cost series, and a night's value compared with a history of nights.

A P95 or a throughput measured tonight differs from last night's even when nothing changed: the machine, a driver,
a neighbour. The bootstrap over tonight's requests cannot see that. Here the between-night variance of a series is
estimated from re-measurements of unchanged revisions (same model and revision on several nights), pooled over
revisions on the log scale; with too little history a conservative default CV is assumed and said so.

Pure functions over numbers, plus one reader of the ``latency`` table's history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evals.analysis import power, stats

if TYPE_CHECKING:
    from evals.warehouse.views import ReadModel

SERIES_COLUMNS = ("ttft_p95_ms", "e2e_p95_ms", "output_tokens_per_s", "usd_per_1m_output_tokens")
Level = tuple[str, float]


@dataclass(frozen=True)
class NightNoise:
    """The night-to-night SD of log(value) of one series.

    ``estimated``: from ``df`` re-measurements (the pooled spread of stored values, sampling noise included);
    otherwise the default CV, to which a night's own sampling variance is added.
    """

    sd: float
    df: float | None
    estimated: bool

    def night_var(self, sampling_se: float | None) -> float:
        """Variance of one night's log value: the series' spread, never below the night's own sampling variance."""
        return sum(self.night_parts(sampling_se))

    def night_parts(self, sampling_se: float | None) -> tuple[float, float]:
        """:meth:`night_var` split into the series' share and the night's own sampling share (their sum)."""
        own = (sampling_se or 0.0) ** 2
        if not self.estimated:
            return self.sd**2, own
        return (0.0, own) if own > self.sd**2 else (self.sd**2, 0.0)

    def describe(self) -> str:
        source = f"from {self.df:g} re-measurements" if self.estimated else "default: history too short"
        return f"night CV {self.sd:.1%} ({source})"


def night_noise(series: Sequence[Sequence[float]], *, default_cv: float, min_history: int) -> NightNoise:
    """The night-to-night noise from ``series`` (per unchanged revision, its values on successive nights).

    Pooled within-revision variance of log values, with Σ(n_r − 1) degrees of freedom; fewer than
    ``min_history`` re-measurements give the default (log(1 + default_cv)), which is not estimated (no t).
    """
    import numpy as np

    squares, df = 0.0, 0
    for values in series:
        x = np.asarray([v for v in values if v is not None and math.isfinite(v) and v > 0], dtype=float)
        if len(x) >= 2:
            logs = np.log(x)
            squares += float(((logs - logs.mean()) ** 2).sum())
            df += len(x) - 1
    if df < min_history:
        return NightNoise(math.log1p(default_cv), None, estimated=False)
    return NightNoise(math.sqrt(squares / df), float(df), estimated=True)


@dataclass(frozen=True)
class LogDiff:
    """log(value / reference) with its SE (sampling and night noise), t degrees of freedom and the noise's share."""

    value: float
    reference: float
    delta: float
    se: float
    df: float | None
    night_sd: float
    method: str = "bootstrap"  # how the sampling SE was obtained: "trials" when between a level's trials

    def estimate(self, alpha: float, **extra: Any) -> stats.Estimate:
        """The difference in the metric's units: CI exp-transformed, SE and MDE by the delta method."""
        q = stats.quantile(1 - alpha / 2, self.df)
        base = self.reference
        return stats.Estimate(
            value=self.value,
            baseline_value=base,
            delta=self.value - base,
            ci_low=base * math.expm1(self.delta - q * self.se),
            ci_high=base * math.expm1(self.delta + q * self.se),
            method=self.method,
            p_value=stats.two_sided_p(self.delta, self.se, self.df),
            se=abs(base) * self.se,
            mde=abs(base) * (power.mde(self.se, alpha, df=self.df) or math.nan),
            df=self.df,
            night_se=abs(base) * self.night_sd,
            **extra,
        )


def series_diff(
    value: float,
    sampling_se: float | None,
    history: Sequence[float],
    history_se: float | None,
    noise: NightNoise,
    *,
    sampling_df: float | None = None,
    history_df: float | None = None,
) -> LogDiff:
    """Tonight's ``value`` against the geometric mean of ``history`` (the baseline revision's nights, last = the
    baseline run), on the log scale.

    var = night_var(tonight) + night_var(baseline) / K: tonight carries its sampling SE (``sampling_se``, of the log)
    and one night's noise; the baseline, K nights averaged. With K = 1 this is last night against tonight.
    A sampling SE estimated from a few trials has degrees of freedom of its own (``sampling_df``, ``history_df``:
    trials - 1); the t then takes the Welch-Satterthwaite df of the series' and the trials' variances. Without
    them (a bootstrap SE, known), the df is the series noise's.
    """
    import numpy as np

    logs = np.log(np.asarray(history, dtype=float))
    k = len(logs)
    (series_tonight, own_tonight), (series_before, own_before) = (
        noise.night_parts(se) for se in (sampling_se, history_se)
    )
    var = series_tonight + own_tonight + (series_before + own_before) / k
    df = noise.df
    if sampling_df is not None or history_df is not None:
        parts = [
            (series_tonight + series_before / k, noise.df),
            (own_tonight, sampling_df),
            (own_before / k, history_df),
        ]
        df = stats.satterthwaite([(v, d) for v, d in parts if v > 0])
    reference = float(np.exp(logs.mean()))
    return LogDiff(
        value=value,
        reference=reference,
        delta=math.log(value / reference),
        se=math.sqrt(var),
        df=df,
        night_sd=noise.sd * math.sqrt(1 + 1 / k),
        # "trials" only where a trials' variance is in the SE (an estimated noise above it replaces it).
        method="trials" if (own_tonight and sampling_df) or (own_before and history_df) else "bootstrap",
    )


def shifted(diff: LogDiff, value: float, log_offset: float) -> LogDiff:
    """A series tied to ``diff`` by a known factor: cost = price / throughput gives log ratio offset − delta."""
    delta = log_offset - diff.delta
    return LogDiff(value, value / math.exp(delta), delta, diff.se, diff.df, diff.night_sd, diff.method)


# ---------------------------------------------------------------------------------------------- from the warehouse


@dataclass(frozen=True)
class History:
    """Stored per-night values of latency series: per (model, revision, level, column), (eval_date, value) pairs."""

    values: Mapping[tuple[str, str, Level, str], list[tuple[Any, float]]]

    def nights(self, model: str, revision: str, level: Level, column: str, *, until: Any, last: int) -> list[float]:
        """The revision's values on its ``last`` nights up to ``until`` (inclusive), oldest first."""
        rows = [(d, v) for d, v in self.values.get((model, revision, level, column), []) if d <= until]
        return [v for _, v in rows[-last:]]

    def series(self, models: Sequence[str], level: Level, column: str, *, before: Any) -> list[list[float]]:
        """Per (model, revision) of ``models``, its values on nights before ``before`` (unchanged re-measurements)."""
        return [
            [v for d, v in pairs if d < before]
            for (model, _, lvl, col), pairs in self.values.items()
            if model in models and lvl == level and col == column
        ]


def read_history(con: ReadModel, models: Sequence[str], scenario: str | None, until: Any) -> History:
    """The ``latency`` table's values of ``models`` in ``scenario`` per published run up to ``until`` (a logical
    date), in run order: two runs on one calendar day (a rerun, the demo) are two nights of the series.

    Hardware is not a key yet: a series that moved to other GPUs shows it as night-to-night noise."""
    cursor = con.execute(
        f"""select l.model_id, l.revision, r.logical_date, l.load_type, l.load,
                   {", ".join(f"l.{c}" for c in SERIES_COLUMNS)}
            from latency l join runs r on l.run_id = r.run_id and l.eval_date = r.eval_date
            where list_contains($models, l.model_id) and l.scenario is not distinct from $scenario
              and r.logical_date <= $until and l.input_tokens is null
            order by r.logical_date, l.run_id""",
        {"models": list(dict.fromkeys(models)), "scenario": scenario, "until": until},
    )
    per_night: dict[tuple[str, str, Level, str], dict[Any, float]] = {}
    for model, revision, day, load_type, load, *values in cursor.fetchall():
        for column, value in zip(SERIES_COLUMNS, values, strict=True):
            if value is not None and math.isfinite(value) and value > 0:
                per_night.setdefault((model, revision, (load_type, float(load)), column), {})[day] = float(value)
    return History({key: sorted(nights.items()) for key, nights in per_night.items()})
