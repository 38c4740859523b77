"""Latency and cost comparisons of two runs per load level: bootstrap CIs of P95s and throughput from the samples."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evals.analysis import stats
from evals.analysis.options import Compared, CompareOptions

if TYPE_CHECKING:
    import duckdb
    import numpy as np

MIN_BOOTSTRAP_SAMPLES = 10  # fewer ok requests than this in a level: stored numbers, no CI

_LEVEL_COLUMNS = (
    "ttft_p95_ms",
    "e2e_p95_ms",
    "output_tokens_per_s",
    "usd_per_1m_output_tokens",
    "gpu_hour_usd",
    "gpu_count",
)


def latency_deltas(
    con: duckdb.DuckDBPyConnection, run: Mapping[str, Any], baseline: Mapping[str, Any], opts: CompareOptions
) -> list[Compared]:
    """P95 TTFT, P95 E2E, throughput (bootstrap CIs from the samples) and cost, per load level both runs ran."""
    mine, theirs = _levels(con, run), _levels(con, baseline)
    my_samples, their_samples = _samples(con, run), _samples(con, baseline)
    out: list[Compared] = []
    for level in sorted(mine.keys() & theirs.keys()):
        a, b = mine[level], theirs[level]
        sa, sb = my_samples.get(level), their_samples.get(level)
        bootstrap = sa is not None and sb is not None
        suffix = f"@{level[0]}={level[1]:g}"
        for column, stat, hib in (
            ("ttft_p95_ms", stats.quantile_stat("ttft_ms", 0.95), False),
            ("e2e_p95_ms", stats.quantile_stat("e2e_ms", 0.95), False),
        ):
            name = f"latency:{column}{suffix}"
            if bootstrap:
                assert sa is not None and sb is not None
                est = stats.bootstrap_diff(
                    sa, sb, stat, alpha=opts.alpha, resamples=opts.resamples, seed=_seed(opts, run, baseline, name)
                )
            elif a[column] is not None and b[column] is not None:
                est = stats.Estimate(a[column], b[column], a[column] - b[column])
            else:
                continue
            out.append((name, est, hib, _practical(est, opts.min_effect_latency)))
        throughput = _throughput(a, b, sa, sb, level[0], opts, _seed(opts, run, baseline, f"tps{suffix}"))
        if throughput is not None:
            out.append(
                (
                    f"latency:output_tokens_per_s{suffix}",
                    throughput,
                    True,
                    _practical(throughput, opts.min_effect_latency),
                )
            )
        cost_a, cost_b = a["usd_per_1m_output_tokens"], b["usd_per_1m_output_tokens"]
        if cost_a is not None and cost_b is not None:
            # Cost is price × GPUs / throughput: it has no sampling spread of its own. At an unchanged price it moved
            # only if throughput moved significantly, so it is judged only when the throughput CI excludes 0.
            est = stats.Estimate(cost_a, cost_b, cost_a - cost_b)
            same_price = (a["gpu_hour_usd"], a["gpu_count"]) == (b["gpu_hour_usd"], b["gpu_count"])
            significant = throughput is not None and _excludes_zero(throughput)
            threshold = opts.min_effect_cost * abs(cost_b) if (significant or not same_price) else math.inf
            out.append((f"cost:usd_per_1m_output_tokens{suffix}", est, False, threshold))
    return out


def _practical(est: stats.Estimate, relative: float) -> float:
    """The minimum practical effect in metric units; infinite when the estimate has no CI.

    A latency level with fewer than MIN_BOOTSTRAP_SAMPLES ok requests gives no CI: its stored percentiles are
    reported, but too few requests cannot show a change, so the verdict is no_change rather than a guess.
    """
    if est.ci_low is None or est.ci_high is None:
        return math.inf
    return relative * abs(est.baseline_value or 0.0)


def _excludes_zero(est: stats.Estimate) -> bool:
    return est.ci_low is not None and est.ci_high is not None and not (est.ci_low <= 0.0 <= est.ci_high)


def _throughput(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    sa: Mapping[str, np.ndarray] | None,
    sb: Mapping[str, np.ndarray] | None,
    load_type: str,
    opts: CompareOptions,
    seed: int,
) -> stats.Estimate | None:
    """Stored output tokens/s of both levels, with a bootstrap CI of the difference.

    The value is the latency table's (tokens over the level's wall time). Its sampling spread is taken from an
    estimator the samples support: closed loop (fixed concurrency) tokens/s ∝ Σ output tokens / Σ E2E (Little's
    law); open loop (fixed rate) tokens/s ∝ Σ output tokens. Each resample is scaled so the point estimate is
    the stored value.
    """
    ta, tb = a["output_tokens_per_s"], b["output_tokens_per_s"]
    if ta is None or tb is None:
        return None
    if sa is None or sb is None:
        return stats.Estimate(ta, tb, ta - tb)
    stat = stats.ratio_stat("output_tokens", "e2e_ms") if load_type == "concurrency" else _sum_stat("output_tokens")
    ra, rb = float(stat(sa)), float(stat(sb))
    if not (ra > 0 and rb > 0):
        return stats.Estimate(ta, tb, ta - tb)
    return stats.bootstrap_diff(
        sa, sb, stat, alpha=opts.alpha, resamples=opts.resamples, seed=seed, scale=ta / ra, baseline_scale=tb / rb
    )


def _sum_stat(column: str) -> stats.Statistic:
    def stat(cols: Mapping[str, np.ndarray]) -> np.ndarray:
        import numpy as np

        return np.asarray(cols[column].sum(axis=-1), dtype=float)

    return stat


def _levels(con: duckdb.DuckDBPyConnection, run: Mapping[str, Any]) -> dict[tuple[str, float], dict[str, Any]]:
    cursor = con.execute(
        f"select load_type, load, {', '.join(_LEVEL_COLUMNS)} from latency where run_id = $run and eval_date = $day",
        {"run": run["run_id"], "day": run["eval_date"]},
    )
    out = {}
    for load_type, load, *values in cursor.fetchall():
        out[(load_type, float(load))] = {
            c: (float(v) if v is not None and math.isfinite(v) else None)
            for c, v in zip(_LEVEL_COLUMNS, values, strict=True)
        }
    return out


def _samples(con: duckdb.DuckDBPyConnection, run: Mapping[str, Any]) -> dict[tuple[str, float], dict[str, np.ndarray]]:
    """Per level, the ok requests' TTFT and E2E (ms) and output tokens, as numpy columns."""
    import numpy as np

    data = con.execute(
        """select load_type, load, (first_token_s - sent_s) * 1000 as ttft_ms, (finished_s - sent_s) * 1000 as e2e_ms,
                  coalesce(output_tokens, 0)::double as output_tokens
           from latency_samples
           where run_id = $run and eval_date = $day and ok
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
                c: np.asarray(data[c], dtype=float)[mask] for c in ("ttft_ms", "e2e_ms", "output_tokens")
            }
    return out


def _seed(opts: CompareOptions, run: Mapping[str, Any], baseline: Mapping[str, Any], metric: str) -> int:
    # One stream per (pair, metric): a rerun reproduces every CI, and metrics do not share draws.
    key = f"{opts.seed}|{run['run_id']}|{baseline['run_id']}|{metric}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")
