"""Comparisons of a published run with its previous run and with baseline models, per metric, with CIs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evals.analysis import stats
from evals.analysis.views import HEADLINE_METRICS
from evals.errors import RunNotFound

if TYPE_CHECKING:
    import duckdb
    import numpy as np

    from evals.settings import Settings
    from evals.warehouse import Warehouse

log = logging.getLogger(__name__)

HEADLINE = "accuracy:headline"
NO_METRIC = "*"  # the metric of a no_baseline row: the comparison as a whole
MIN_BOOTSTRAP_SAMPLES = 10  # fewer ok requests than this in a level: stored numbers, no CI

_RUN_COLUMNS = "run_id, model_id, revision, eval_date, logical_date, suite, scenario"


@dataclass(frozen=True)
class CompareOptions:
    """How runs are compared; defaults come from the ``compare_*`` settings."""

    baselines: tuple[str, ...] = ()
    alpha: float = 0.05
    min_effect_accuracy_points: float = 1.0  # absolute, in percentage points of a [0, 1] metric
    min_effect_latency: float = 0.05  # relative to the baseline value
    min_effect_cost: float = 0.05  # relative to the baseline value
    resamples: int = 2000
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> CompareOptions:
        options = cls(
            baselines=tuple(settings.compare_baselines),
            alpha=settings.compare_alpha,
            min_effect_accuracy_points=settings.compare_min_effect_accuracy_points,
            min_effect_latency=settings.compare_min_effect_latency,
            min_effect_cost=settings.compare_min_effect_cost,
            resamples=settings.compare_bootstrap_resamples,
            seed=settings.compare_seed,
        )
        given: dict[str, Any] = {
            k: (tuple(v) if k == "baselines" else v) for k, v in overrides.items() if v is not None
        }
        return dataclasses.replace(options, **given)


def compare_run(
    run_id: str,
    *,
    warehouse: Warehouse | None = None,
    baselines: Sequence[str] | None = None,
    alpha: float | None = None,
    min_effect_accuracy_points: float | None = None,
    min_effect_latency: float | None = None,
    min_effect_cost: float | None = None,
    resamples: int | None = None,
    seed: int | None = None,
    write: bool = True,
) -> list[dict[str, Any]]:
    """Compare one published run with the model's previous published run and each baseline model's latest run.

    Returns ``comparisons`` rows (written to the warehouse when ``write``); a missing baseline gives one
    ``no_baseline`` row. Options left None come from the settings.
    """
    return compare_night(
        [run_id],
        warehouse=warehouse,
        baselines=baselines,
        alpha=alpha,
        min_effect_accuracy_points=min_effect_accuracy_points,
        min_effect_latency=min_effect_latency,
        min_effect_cost=min_effect_cost,
        resamples=resamples,
        seed=seed,
        write=write,
    )


def compare_night(
    run_ids: Iterable[str], *, warehouse: Warehouse | None = None, write: bool = True, **options: Any
) -> list[dict[str, Any]]:
    """:func:`compare_run` for every run of a night, over one snapshot of the warehouse."""
    from evals.analysis.views import connect
    from evals.warehouse import Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    opts = CompareOptions.from_settings(warehouse.settings, **options)
    con = connect(warehouse)
    try:
        per_run = {run_id: _compare_one(con, run_id, opts) for run_id in dict.fromkeys(run_ids)}
    finally:
        con.close()
    if write:
        for run_id, rows in per_run.items():
            record = warehouse.find_run(run_id, area="published", eval_date=rows[0]["eval_date"])
            if record is None:  # published a moment ago, so this means it was just re-published or deleted
                raise RunNotFound(f"run {run_id} vanished from {warehouse.uri} while being compared")
            warehouse.write_table(record, "comparisons", rows)
    return [row for rows in per_run.values() for row in rows]


def compare_models(
    model_id: str, baseline_model_id: str, *, warehouse: Warehouse | None = None, **options: Any
) -> list[dict[str, Any]]:
    """The latest published runs of ``model_id`` against those of ``baseline_model_id`` (same suite/scenario).

    Nothing is written: this is what ``evals compare MODEL_A MODEL_B`` prints.
    """
    from evals.analysis.views import connect
    from evals.warehouse import Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    opts = CompareOptions.from_settings(warehouse.settings, **options)
    con = connect(warehouse)
    try:
        latest = _runs(
            con,
            "model_id = $model qualify row_number() over (partition by suite, scenario "
            "order by logical_date desc, finished_at desc nulls last) = 1",
            {"model": model_id},
        )
        if not latest:
            raise RunNotFound(f"no published run of {model_id} in {warehouse.uri}")
        rows: list[dict[str, Any]] = []
        for run in latest:
            baseline = _latest_run(con, baseline_model_id, run, before=None)
            rows += compare_pair(con, run, baseline, "baseline_model", opts, baseline_model_id=baseline_model_id)
        return rows
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------- finding baselines


def _runs(con: duckdb.DuckDBPyConnection, where: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(f"select {_RUN_COLUMNS} from runs where {where}", dict(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _latest_run(
    con: duckdb.DuckDBPyConnection,
    model_id: str,
    like: Mapping[str, Any],
    *,
    before: dt.datetime | None,
    strict: bool = False,
) -> dict[str, Any] | None:
    """The latest published run of ``model_id`` with the same suite and scenario as ``like``.

    ``before`` bounds the logical date (strictly with ``strict``), so a rerun of an old night finds the same
    baseline it found then.
    """
    bound = "" if before is None else ("and logical_date < $before" if strict else "and logical_date <= $before")
    params: dict[str, Any] = {
        "model": model_id,
        "suite": like["suite"],
        "scenario": like["scenario"],
        "self": like["run_id"],
    }
    if before is not None:
        params["before"] = before
    rows = _runs(
        con,
        "model_id = $model and suite is not distinct from $suite and scenario is not distinct from $scenario "
        f"{bound} and run_id != $self order by logical_date desc, finished_at desc nulls last limit 1",
        params,
    )
    return rows[0] if rows else None


def _compare_one(con: duckdb.DuckDBPyConnection, run_id: str, opts: CompareOptions) -> list[dict[str, Any]]:
    runs = _runs(con, "run_id = $run", {"run": run_id})
    if not runs:
        raise RunNotFound(f"run {run_id} is not published; only published runs are compared")
    run = runs[0]
    previous = _latest_run(con, run["model_id"], run, before=run["logical_date"], strict=True)
    kind = "previous_run" if previous is not None and previous["revision"] == run["revision"] else "previous_revision"
    rows = compare_pair(con, run, previous, kind, opts)
    for model in opts.baselines:
        if model == run["model_id"]:
            continue
        baseline = _latest_run(con, model, run, before=run["logical_date"])
        rows += compare_pair(con, run, baseline, "baseline_model", opts, baseline_model_id=model)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("regression", "improvement", "no_baseline")}
    log.info("compared run %s (%s@%s): %d rows %s", run_id, run["model_id"], run["revision"][:12], len(rows), counts)
    return rows


# ---------------------------------------------------------------------------------------------- one pair of runs


def compare_pair(
    con: duckdb.DuckDBPyConnection,
    run: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    kind: str,
    opts: CompareOptions,
    *,
    baseline_model_id: str | None = None,
) -> list[dict[str, Any]]:
    """Every comparable metric of ``run`` against ``baseline``; one no_baseline row when there is none."""

    def row(metric: str, est: stats.Estimate | None, verdict: str, higher_is_better: bool = True) -> dict[str, Any]:
        has_ci = est is not None and est.ci_low is not None
        return {
            "run_id": run["run_id"],
            "model_id": run["model_id"],
            "revision": run["revision"],
            "eval_date": run["eval_date"],
            "baseline_run_id": baseline["run_id"] if baseline else None,
            "baseline_model_id": baseline["model_id"] if baseline else baseline_model_id,
            "baseline_revision": baseline["revision"] if baseline else None,
            "kind": kind,
            "metric": metric,
            "value": _finite(est.value) if est else None,
            "baseline_value": _finite(est.baseline_value) if est else None,
            "delta": _finite(est.delta) if est else None,
            "ci_low": _finite(est.ci_low) if est else None,
            "ci_high": _finite(est.ci_high) if est else None,
            "alpha": opts.alpha if has_ci else None,
            "verdict": verdict,
        }

    if baseline is None:
        return [row(NO_METRIC, None, "no_baseline")]
    rows = [
        row(metric, est, stats.verdict(est.delta, est.ci_low, est.ci_high, higher_is_better=hib, threshold=thr))
        for metric, est, hib, thr in [
            *_accuracy(con, run, baseline, opts),
            *_latency(con, run, baseline, opts),
        ]
    ]
    return rows or [row(NO_METRIC, None, "no_baseline")]  # a baseline with no metric in common


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


Compared = tuple[str, stats.Estimate, bool, float]  # metric, estimate, higher_is_better, threshold (metric units)


def _accuracy(
    con: duckdb.DuckDBPyConnection, run: Mapping[str, Any], baseline: Mapping[str, Any], opts: CompareOptions
) -> list[Compared]:
    """Per (task, metric, filter) present in both runs, plus the headline (mean over common top-level tasks)."""
    mine, theirs = _accuracy_rows(con, run), _accuracy_rows(con, baseline)
    out: list[Compared] = []
    for key in sorted(mine.keys() & theirs.keys()):
        a, b = mine[key], theirs[key]
        se_a, _ = stats.standard_error(a["value"], a["stderr"], a["n_samples"], a["metric"])
        se_b, _ = stats.standard_error(b["value"], b["stderr"], b["n_samples"], b["metric"])
        est = stats.normal_diff(a["value"], se_a, b["value"], se_b, opts.alpha)
        out.append((_accuracy_name(*key), est, bool(a["higher_is_better"]), _points(opts, a["value"], b["value"])))
    headline = _headline(mine, theirs, opts)
    return ([headline] if headline else []) + out


def _accuracy_name(task: str, metric: str, filter_: str) -> str:
    return f"accuracy:{task}/{metric}" + ("" if filter_ == "none" else f",{filter_}")


def _points(opts: CompareOptions, value: float, baseline: float) -> float:
    # Points are percent of a [0, 1] metric; a metric on a 0–100 scale (bleu) takes them as its own units.
    return (
        opts.min_effect_accuracy_points / 100
        if 0 <= value <= 1 and 0 <= baseline <= 1
        else opts.min_effect_accuracy_points
    )


def _accuracy_rows(
    con: duckdb.DuckDBPyConnection, run: Mapping[str, Any]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    cursor = con.execute(
        "select task, metric, filter, task_group, value, stderr, n_samples, coalesce(higher_is_better, true) "
        "as higher_is_better from accuracy where run_id = $run and eval_date = $day",
        {"run": run["run_id"], "day": run["eval_date"]},
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    return {(r["task"], r["metric"], r["filter"]): r for r in rows}


def _headline(
    mine: Mapping[tuple[str, str, str], dict[str, Any]],
    theirs: Mapping[tuple[str, str, str], dict[str, Any]],
    opts: CompareOptions,
) -> Compared | None:
    """The leaderboard's headline (each top-level task's preferred metric), over the tasks both runs scored."""

    def rank(key: tuple[str, str, str]) -> tuple[int, str, str]:
        _, metric, filter_ = key
        return (HEADLINE_METRICS.index(metric) if metric in HEADLINE_METRICS else 99, metric, filter_)

    def pick(rows: Mapping[tuple[str, str, str], dict[str, Any]]) -> dict[str, tuple[str, str, str]]:
        best: dict[str, tuple[str, str, str]] = {}
        for key, r in rows.items():
            if (
                r["task_group"] is None
                and r["higher_is_better"]
                and (r["task"] not in best or rank(key) < rank(best[r["task"]]))
            ):
                best[r["task"]] = key
        return best

    a_keys, b_keys = pick(mine), pick(theirs)
    common = sorted(task for task in a_keys.keys() & b_keys.keys() if a_keys[task] == b_keys[task])
    if not common:
        return None
    a_rows = [mine[a_keys[t]] for t in common]
    b_rows = [theirs[b_keys[t]] for t in common]

    def mean_se(rows: list[dict[str, Any]]) -> tuple[float, float | None]:
        ses = [stats.standard_error(r["value"], r["stderr"], r["n_samples"], r["metric"])[0] for r in rows]
        mean = sum(r["value"] for r in rows) / len(rows)
        # Tasks are independent item sets: the variance of a mean of k estimates is the sum of variances / k².
        se = None if any(s is None for s in ses) else math.sqrt(sum(s**2 for s in ses if s is not None)) / len(rows)
        return mean, se

    (a, se_a), (b, se_b) = mean_se(a_rows), mean_se(b_rows)
    return HEADLINE, stats.normal_diff(a, se_a, b, se_b, opts.alpha), True, _points(opts, a, b)


# ---------------------------------------------------------------------------------------------- latency and cost

_LEVEL_COLUMNS = (
    "ttft_p95_ms",
    "e2e_p95_ms",
    "output_tokens_per_s",
    "usd_per_1m_output_tokens",
    "gpu_hour_usd",
    "gpu_count",
)


def _latency(
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
