"""Latency and cost comparisons per load level: sampling (trials or a block bootstrap) and night noise in every CI."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evals.analysis import noise, stats
from evals.analysis.options import Compared, CompareOptions

if TYPE_CHECKING:
    import numpy as np

    from evals.warehouse.views import ReadModel

_LEVEL_COLUMNS = (
    "ttft_p95_ms",
    "e2e_p95_ms",
    "output_tokens_per_s",
    "usd_per_1m_output_tokens",
    "gpu_hour_usd",
    "gpu_count",
)


def latency_deltas(
    con: ReadModel, run: Mapping[str, Any], baseline: Mapping[str, Any], opts: CompareOptions
) -> list[Compared]:
    """P95 TTFT, P95 E2E, throughput and cost per load level both runs ran, each against the baseline's nights.

    Each estimate carries tonight's sampling SE (a block bootstrap over its requests, or the spread between the
    level's trials where that is larger) and the series' night-to-night
    noise (:mod:`evals.analysis.noise`); the baseline is the geometric mean of the baseline revision's last
    ``opts.night_history`` nights. Cost is price / throughput: its CI is throughput's, moved by the price ratio.
    """
    import numpy as np

    mine, theirs = _levels(con, run), _levels(con, baseline)
    my_samples, their_samples = _samples(con, run), _samples(con, baseline)
    models = [run["model_id"], baseline["model_id"]]
    history = noise.read_history(con, models, run.get("scenario"), run["logical_date"])
    # Two runs of one night (a challenger beside its champion, models of one DAG run) share the night: its noise
    # cancels, so an unmeasured series noise does not hold their verdict back.
    same_night = run["logical_date"] == baseline["logical_date"]
    out: list[Compared] = []
    for level in sorted(mine.keys() & theirs.keys()):
        a, b = mine[level], theirs[level]
        sa, sb = my_samples.get(level), their_samples.get(level)
        suffix = f"@{level[0]}={level[1]:g}"
        throughput: tuple[noise.LogDiff, dict[str, Any]] | None = None
        for column, stat, hib in _SERIES:
            name = f"latency:{column}{suffix}"
            if a[column] is None or b[column] is None:
                continue
            rng = np.random.default_rng(_seed(opts, run, baseline, name))
            sampled_a, sampled_b = (_log_se(s, stat, opts.resamples, rng) for s in (sa, sb))
            if sampled_a is None or sampled_b is None:
                est = stats.Estimate(
                    a[column], b[column], a[column] - b[column], notes=f"fewer than {MIN_BOOTSTRAP_SAMPLES} ok requests"
                )
                out.append((name, est, hib, opts.min_effect_latency * abs(b[column])))
                continue
            nights = history.nights(
                baseline["model_id"],
                baseline["revision"],
                level,
                column,
                until=baseline["logical_date"],
                last=opts.night_history,
            ) or [b[column]]
            series_noise = noise.night_noise(
                history.series(models, level, column, before=run["logical_date"]),
                default_cv=opts.night_cv,
                min_history=opts.night_min_history,
            )
            (se_a, df_a), (se_b, df_b) = sampled_a, sampled_b
            diff = noise.series_diff(a[column], se_a, nights, se_b, series_noise, sampling_df=df_a, history_df=df_b)
            fields = _history_fields(series_noise, nights, opts)
            if column == "output_tokens_per_s":
                throughput = diff, fields
            est = _unless_assumed(diff.estimate(opts.alpha, **fields), None if same_night else series_noise)
            out.append((name, est, hib, opts.min_effect_latency * abs(est.baseline_value or 0.0)))
        cost = _cost(a, b, throughput, suffix, opts, series_noise if throughput and not same_night else None)
        if cost is not None:
            out.append(cost)
    return out


MIN_BOOTSTRAP_SAMPLES = 10  # fewer ok requests than this in a level: stored numbers, no test


def reference_ttft(con: ReadModel, run: Mapping[str, Any]) -> str | None:
    """The name of ``run``'s primary latency row: P95 TTFT at its scenario's reference level (None: no levels)."""
    from evals.analysis.measures import reference_level

    found = con.execute("select config from runs where run_id = $run", {"run": run["run_id"]}).fetchone()
    level = reference_level(found[0] if found else None, _levels(con, run))
    return f"latency:ttft_p95_ms@{level[0]}={level[1]:g}" if level else None


# Throughput (tokens/s) is Σ output tokens / Σ request durations in both load modes: per-request rates weighted by
# their durations. (Σ tokens alone ignores durations and gives a zero-width CI when every request emits as many.)
_SERIES = (
    ("ttft_p95_ms", stats.quantile_stat("ttft_ms", 0.95), False),
    ("e2e_p95_ms", stats.quantile_stat("e2e_ms", 0.95), False),
    ("output_tokens_per_s", stats.ratio_stat("output_tokens", "e2e_ms"), True),
)


def _log_se(
    sample: Mapping[str, np.ndarray] | None, stat: stats.Statistic, resamples: int, rng: np.random.Generator
) -> tuple[float, float | None] | None:
    """Sampling SE of log(statistic) of one level and its df (:func:`stats.level_log_se`); None without enough
    requests."""
    if sample is None:
        return None
    columns = {name: values for name, values in sample.items() if name != "trial"}
    return stats.level_log_se(
        columns, stat, trial=sample["trial"], resamples=resamples, rng=rng, min_rows=MIN_BOOTSTRAP_SAMPLES
    )


def _history_fields(series_noise: noise.NightNoise, nights: list[float], opts: CompareOptions) -> dict[str, Any]:
    waiting = (
        ""
        if series_noise.estimated
        else f"; no verdict until the series has {opts.night_min_history} re-measured nights"
    )
    return {
        "night_cv": math.expm1(series_noise.sd),
        "n_history": len(nights),
        "notes": f"{series_noise.describe()}; baseline: geometric mean of {len(nights)} night(s){waiting}",
    }


def _unless_assumed(est: stats.Estimate, series_noise: noise.NightNoise | None) -> stats.Estimate:
    """No test on an assumed noise level: until the series' night-to-night noise is measured (canary
    re-measurements), a latency or cost row keeps its CI but has no p-value, so its verdict is
    ``insufficient_data`` (a machine whose nights differ more than the default CV must not raise alarms)."""
    if series_noise is None or series_noise.estimated:
        return est
    return dataclasses.replace(est, p_value=None)


def _cost(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    throughput: tuple[noise.LogDiff, dict[str, Any]] | None,
    suffix: str,
    opts: CompareOptions,
    series_noise: noise.NightNoise | None = None,
) -> Compared | None:
    """Cost per 1M output tokens = price × GPUs / throughput: throughput's log-scale estimate, moved by the price.

    At an unchanged price the cost row tests throughput's hypothesis again, so it names that row (``tested_with``)
    and error control counts the pair once; a price change is a known factor and makes it a test of its own.
    """
    cost_a, cost_b = a["usd_per_1m_output_tokens"], b["usd_per_1m_output_tokens"]
    if cost_a is None or cost_b is None or not (cost_a > 0 and cost_b > 0):
        return None
    name = f"cost:usd_per_1m_output_tokens{suffix}"
    threshold = opts.min_effect_cost * abs(cost_b)
    if throughput is None:
        est = stats.Estimate(cost_a, cost_b, cost_a - cost_b, notes="throughput has no test: neither has cost")
        return name, est, False, threshold
    tps, fields = throughput
    price = [(x["gpu_hour_usd"] or 0.0) * (x["gpu_count"] or 1.0) for x in (a, b)]
    offset = math.log(price[0] / price[1]) if price[0] > 0 and price[1] > 0 else 0.0
    diff = noise.shifted(tps, cost_a, offset)
    tied = f"latency:output_tokens_per_s{suffix}" if offset == 0.0 else None
    how = "price unchanged: throughput's test" if tied else f"price x{math.exp(offset):.3g} with throughput's CI"
    est = diff.estimate(opts.alpha, tested_with=tied, **{**fields, "notes": f"{how}; {fields['notes']}"})
    est = _unless_assumed(est, series_noise)
    return name, est, False, opts.min_effect_cost * abs(est.baseline_value or 0.0)


def _levels(con: ReadModel, run: Mapping[str, Any]) -> dict[tuple[str, float], dict[str, Any]]:
    cursor = con.execute(
        f"select load_type, load, {', '.join(_LEVEL_COLUMNS)} from latency where run_id = $run and eval_date = $day"
        " and input_tokens is null",  # a prompt-length sweep's rows are not load levels
        {"run": run["run_id"], "day": run["eval_date"]},
    )
    out = {}
    for load_type, load, *values in cursor.fetchall():
        out[(load_type, float(load))] = {
            c: (float(v) if v is not None and math.isfinite(v) else None)
            for c, v in zip(_LEVEL_COLUMNS, values, strict=True)
        }
    return out


def _samples(con: ReadModel, run: Mapping[str, Any]) -> dict[tuple[str, float], dict[str, np.ndarray]]:
    """Per level, the ok requests' TTFT and E2E (ms), output tokens and trial (0 when run once), as numpy columns."""
    import numpy as np

    data = con.execute(
        """select load_type, load, (first_token_s - sent_s) * 1000 as ttft_ms, (finished_s - sent_s) * 1000 as e2e_ms,
                  coalesce(output_tokens, 0)::double as output_tokens, coalesce(trial, 0)::double as trial
           from latency_samples
           where run_id = $run and eval_date = $day and ok and input_tokens is null
             and sent_s is not null and first_token_s is not null and finished_s is not null
           order by load_type, load, request_index""",
        {"run": run["run_id"], "day": run["eval_date"]},
    ).fetchnumpy()
    out: dict[tuple[str, float], dict[str, np.ndarray]] = {}
    if not len(data["load"]):
        return out
    load_types = np.asarray(data["load_type"], dtype=object)
    loads = np.asarray(data["load"], dtype=float)
    for load_type, load in sorted({(str(t), float(x)) for t, x in zip(load_types, loads, strict=True)}):
        mask = (load_types == load_type) & (loads == load)
        if mask.sum() >= MIN_BOOTSTRAP_SAMPLES:
            out[(load_type, load)] = {
                c: np.asarray(data[c], dtype=float)[mask] for c in ("ttft_ms", "e2e_ms", "output_tokens", "trial")
            }
    return out


def _seed(opts: CompareOptions, run: Mapping[str, Any], baseline: Mapping[str, Any], metric: str) -> int:
    # One stream per (pair, metric): a rerun reproduces every CI, and metrics do not share draws.
    key = f"{opts.seed}|{run['run_id']}|{baseline['run_id']}|{metric}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")
