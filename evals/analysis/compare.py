"""Comparisons of a published run with its previous run and with baseline models, per metric, with CIs."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evals.analysis import stats, verdicts
from evals.analysis.accuracy_deltas import HEADLINE, accuracy_deltas
from evals.analysis.latency_deltas import latency_deltas, reference_ttft
from evals.analysis.options import CompareOptions
from evals.errors import RunNotFound

if TYPE_CHECKING:
    from evals.warehouse import Warehouse
    from evals.warehouse.views import ReadModel

log = logging.getLogger(__name__)

__all__ = [
    "HEADLINE",
    "NO_METRIC",
    "CompareOptions",
    "compare_models",
    "compare_night",
    "compare_pair",
    "compare_run",
    "flips_between",
]

NO_METRIC = "*"  # the metric of a no_baseline row: the comparison as a whole

_RUN_COLUMNS = "run_id, model_id, revision, eval_date, logical_date, suite, scenario"


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
    ``no_baseline`` row. Options left None come from the settings. Verdicts: see :mod:`evals.analysis.verdicts`.
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
    """:func:`compare_run` for every run of a night, over one snapshot of the warehouse.

    Error control spans the night: the p-values of all its rows are adjusted together (weighted Benjamini-Hochberg),
    so the verdicts of a night of 400 rows are as trustworthy as those of one. The summary (rows, tests, findings, the
    expected number of false ones) is logged; :func:`evals.analysis.verdicts.summarize` rebuilds it from the rows.
    """
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    warehouse = warehouse or Warehouse.from_settings()
    opts = CompareOptions.from_settings(warehouse.settings, **options)
    con = connect(warehouse)
    try:
        pending = {run_id: _compare_one(con, run_id, opts) for run_id in dict.fromkeys(run_ids)}
    finally:
        con.close()
    judged = iter(_judge([p for rows in pending.values() for p in rows], opts))
    per_run = {run_id: [next(judged) for _ in rows] for run_id, rows in pending.items()}
    log.info("night: %s", verdicts.summarize([r for rows in per_run.values() for r in rows], opts.alpha).text())
    if write:
        # One commit for the night (at 200 runs, one per run took most of compare_and_report's 136 s); a run
        # re-published or deleted since it was read fails it as a whole (RunNotFound), nothing half-written.
        dates = {rows[0]["eval_date"] for rows in per_run.values()}
        warehouse.write_derived("comparisons", per_run, eval_dates=dates)
    return [row for rows in per_run.values() for row in rows]


def compare_models(
    model_id: str, baseline_model_id: str, *, warehouse: Warehouse | None = None, **options: Any
) -> list[dict[str, Any]]:
    """The latest published runs of ``model_id`` against those of ``baseline_model_id`` (same suite/scenario).

    Nothing is written: this is what ``evals compare MODEL_A MODEL_B`` prints.
    """
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    warehouse = warehouse or Warehouse.from_settings()
    opts = CompareOptions.from_settings(warehouse.settings, **options)
    con = connect(warehouse)
    try:
        pending: list[_Pending] = []
        for run, baseline in _latest_pairs(con, model_id, baseline_model_id, warehouse.uri):
            pending += _pair(con, run, baseline, "baseline_model", opts, baseline_model_id=baseline_model_id)
        return _judge(pending, opts)
    finally:
        con.close()


def flips_between(model_id: str, baseline_model_id: str, *, warehouse: Warehouse | None = None) -> list[dict[str, Any]]:
    """The questions whose score changed from ``baseline_model_id``'s latest run to ``model_id``'s (same suite).

    What ``evals compare A B --flips`` lists: suite, task, doc, target, both responses and the direction.
    """
    from evals.analysis.paired import flips
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    warehouse = warehouse or Warehouse.from_settings()
    con = connect(warehouse)
    try:
        return [
            {"suite": run["suite"], **row}
            for run, baseline in _latest_pairs(con, model_id, baseline_model_id, warehouse.uri)
            if baseline is not None
            for row in flips(con, run, baseline)
        ]
    finally:
        con.close()


def _latest_pairs(
    con: ReadModel, model_id: str, baseline_model_id: str, uri: str
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    latest = _runs(
        con,
        "model_id = $model qualify row_number() over (partition by suite, scenario "
        "order by logical_date desc, finished_at desc nulls last) = 1",
        {"model": model_id},
    )
    if not latest:
        raise RunNotFound(f"no published run of {model_id} in {uri}")
    return [(run, _latest_run(con, baseline_model_id, run, before=None)) for run in latest]


# ---------------------------------------------------------------------------------------------- finding baselines


def _runs(con: ReadModel, where: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(f"select {_RUN_COLUMNS} from runs where {where}", dict(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _latest_run(
    con: ReadModel,
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


def _compare_one(con: ReadModel, run_id: str, opts: CompareOptions) -> list[_Pending]:
    runs = _runs(con, "run_id = $run", {"run": run_id})
    if not runs:
        raise RunNotFound(f"run {run_id} is not published; only published runs are compared")
    run = runs[0]
    previous = _latest_run(con, run["model_id"], run, before=run["logical_date"], strict=True)
    kind = "previous_run" if previous is not None and previous["revision"] == run["revision"] else "previous_revision"
    rows = _pair(con, run, previous, kind, opts)
    for model in opts.baselines:
        if model == run["model_id"]:
            continue
        baseline = _latest_run(con, model, run, before=run["logical_date"])
        rows += _pair(con, run, baseline, "baseline_model", opts, baseline_model_id=model)
    log.info("compared run %s (%s@%s): %d rows", run_id, run["model_id"], run["revision"][:12], len(rows))
    return rows


# ---------------------------------------------------------------------------------------------- one pair of runs

_Pending = tuple[dict[str, Any], verdicts.Judged]  # a row without verdict, and what judging it needs


def compare_pair(con: ReadModel, *pair: Any, **named: Any) -> list[dict[str, Any]]:
    """Every comparable metric of ``run`` against ``baseline`` (arguments as :func:`_pair`), judged on its own:
    error control over this pair's rows only. A night's rows are judged together by :func:`compare_night`."""
    opts = pair[3] if len(pair) > 3 else named["opts"]
    return _judge(_pair(con, *pair, **named), opts)


def _pair(
    con: ReadModel,
    run: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    kind: str,
    opts: CompareOptions,
    *,
    baseline_model_id: str | None = None,
) -> list[_Pending]:
    """Rows of ``run`` against ``baseline`` without verdicts; one no_baseline row when there is none."""

    def row(metric: str, est: stats.Estimate | None, higher_is_better: bool = True, threshold: float = 0.0) -> _Pending:
        has_ci = est is not None and est.ci_low is not None
        record = {
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
            "method": (est.method if has_ci else "none") if est else "none",
            "n_pairs": est.n_pairs if est else None,
            "n_fixed": est.n_fixed if est else None,
            "n_broken": est.n_broken if est else None,
            "p_value": _finite(est.p_value) if est else None,
            "mde": _finite(est.mde) if est else None,
            "night_cv": _finite(est.night_cv) if est else None,
            "n_history": est.n_history if est else None,
            "tested_with": est.tested_with if est else None,
            "notes": est.notes if est else None,
        }
        family = (run["run_id"], record["baseline_run_id"], kind, (est.tested_with if est else None) or metric)
        return record, verdicts.Judged(est, higher_is_better, threshold, family, metric in primary)

    # The pair's primary rows: weighted BH gives them a larger share of the night's alpha.
    primary = {HEADLINE, reference_ttft(con, run)} if baseline is not None else set()
    if baseline is None:
        return [row(NO_METRIC, None)]
    rows = [
        row(metric, est, hib, thr)
        for metric, est, hib, thr in [
            *accuracy_deltas(con, run, baseline, opts),
            *latency_deltas(con, run, baseline, opts),
        ]
    ]
    return rows or [row(NO_METRIC, None)]  # a baseline with no metric in common


def _judge(pending: list[_Pending], opts: CompareOptions) -> list[dict[str, Any]]:
    """The rows with their verdicts and BH-adjusted p-values (one adjustment over all of ``pending``)."""
    judged = verdicts.judge_night([j for _, j in pending], opts.alpha, opts.primary_alpha_share)
    return [
        {**record, "verdict": verdict, "p_adjusted": _finite(p)}
        for (record, _), (verdict, p) in zip(pending, judged, strict=True)
    ]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
