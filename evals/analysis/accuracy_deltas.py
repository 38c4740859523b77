"""Accuracy comparisons of two runs: per (task, metric, filter) and the headline, paired wherever samples allow."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evals.analysis import paired, stats
from evals.analysis.measures import Key, headline_keys
from evals.analysis.options import Compared, CompareOptions

if TYPE_CHECKING:
    from evals.warehouse.views import ReadModel

HEADLINE = "accuracy:headline"


def accuracy_deltas(
    con: ReadModel, run: Mapping[str, Any], baseline: Mapping[str, Any], opts: CompareOptions
) -> list[Compared]:
    """Per (task, metric, filter) present in both runs, plus the headline (mean over common top-level tasks).

    Paired (questions matched by document hash) where both runs logged samples of a mean-aggregated metric and at
    least ``opts.min_pairs`` questions matched; otherwise the unpaired normal approximation, and the row's
    ``method`` says which. The MDE of a paired row plans with the discordance of earlier nights' comparisons.
    """
    mine, theirs = accuracy_rows(con, run), accuracy_rows(con, baseline)
    matches = paired.matched(con, run, baseline)
    children = _children(mine)
    discordance = historical_discordance(con, run)
    estimates: dict[Key, stats.Estimate] = {}
    out: list[Compared] = []
    for key in sorted(mine.keys() & theirs.keys()):
        a, b = mine[key], theirs[key]
        planning = discordance.get(accuracy_name(*key))
        est = _paired(key, a, b, matches, children, opts, planning) or _unpaired(a, b, opts)
        estimates[key] = est
        out.append((accuracy_name(*key), est, bool(a["higher_is_better"]), _points(opts, a["value"], b["value"])))
    headline = _headline(mine, theirs, estimates, opts)
    return ([headline] if headline else []) + out


def accuracy_name(task: str, metric: str, filter_: str) -> str:
    return f"accuracy:{task}/{metric}" + ("" if filter_ == "none" else f",{filter_}")


def accuracy_rows(con: ReadModel, run: Mapping[str, Any], *, schema: str = "main") -> dict[Key, dict[str, Any]]:
    cursor = con.execute(
        "select task, metric, filter, task_group, value, stderr, n_samples, coalesce(higher_is_better, true) "
        f"as higher_is_better from {schema}.accuracy where run_id = $run and eval_date = $day",
        {"run": run["run_id"], "day": run["eval_date"]},
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    return {(r["task"], r["metric"], r["filter"]): r for r in rows}


def historical_discordance(con: ReadModel, run: Mapping[str, Any]) -> dict[str, float]:
    """Per accuracy metric name, the share of paired questions whose score differed on the model's earlier nights."""
    cursor = con.execute(
        "select metric, sum(n_fixed + n_broken) / sum(n_pairs) from comparisons "
        "where model_id = $model and eval_date < $day and n_pairs > 0 and n_fixed is not null "
        "and metric like 'accuracy:%' group by metric",
        {"model": run["model_id"], "day": run["eval_date"]},
    )
    return {str(metric): float(share) for metric, share in cursor.fetchall() if share is not None and share > 0}


def _children(rows: Mapping[Key, Mapping[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for (task, _, _), r in rows.items():
        parent = r["task_group"]
        if parent is not None and task not in out.setdefault(parent, []):
            out[parent].append(task)
    return out


def _paired(
    key: Key,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    matches: Mapping[Key, Any],
    children: Mapping[str, list[str]],
    opts: CompareOptions,
    planning_discordance: float | None,
) -> stats.Estimate | None:
    pairs = paired.pairs_for(*key, matches, children)
    if pairs is None or len(pairs.value) < max(opts.min_pairs, 2):
        return None
    est = paired.paired_diff(pairs, alpha=opts.alpha, planning_discordance=planning_discordance)
    # The stored aggregates are the numbers users see; the delta and its CI are the paired ones (equal to the
    # difference of the aggregates when every question paired).
    return _replace(est, value=a["value"], baseline_value=b["value"])


def _unpaired(a: Mapping[str, Any], b: Mapping[str, Any], opts: CompareOptions) -> stats.Estimate:
    se_a, _ = stats.standard_error(a["value"], a["stderr"], a["n_samples"], a["metric"])
    se_b, _ = stats.standard_error(b["value"], b["stderr"], b["n_samples"], b["metric"])
    return stats.normal_diff(a["value"], se_a, b["value"], se_b, opts.alpha)


def _replace(est: stats.Estimate, **changes: Any) -> stats.Estimate:
    import dataclasses

    return dataclasses.replace(est, **changes)


def _points(opts: CompareOptions, value: float, baseline: float) -> float:
    # Points are percent of a [0, 1] metric; a metric on a 0–100 scale (bleu) takes them as its own units.
    return (
        opts.min_effect_accuracy_points / 100
        if 0 <= value <= 1 and 0 <= baseline <= 1
        else opts.min_effect_accuracy_points
    )


def _headline(
    mine: Mapping[Key, dict[str, Any]],
    theirs: Mapping[Key, dict[str, Any]],
    estimates: Mapping[Key, stats.Estimate],
    opts: CompareOptions,
) -> Compared | None:
    """The headline (mean of each top-level task's preferred metric) over the tasks both runs scored.

    Tasks are independent item sets: delta is the mean of the task deltas and its variance the sum of the task
    variances / k². Paired only when every task's estimate is paired.
    """
    a_keys, b_keys = headline_keys(mine), headline_keys(theirs)
    common = sorted(task for task in a_keys.keys() & b_keys.keys() if a_keys[task] == b_keys[task])
    if not common:
        return None
    parts = [estimates[a_keys[t]] for t in common]
    k = len(parts)
    value = sum(mine[a_keys[t]]["value"] for t in common) / k
    baseline = sum(theirs[b_keys[t]]["value"] for t in common) / k
    ses = [p.se for p in parts]
    if any(se is None or not math.isfinite(se) for se in ses):
        missing = [t for t, p in zip(common, parts, strict=True) if p.se is None]
        est = stats.Estimate(value, baseline, value - baseline, notes=f"no standard error for {', '.join(missing)}")
    else:
        delta = sum(p.delta or 0.0 for p in parts) / k
        se = math.sqrt(sum(s**2 for s in ses if s is not None)) / k
        half = stats.z_value(opts.alpha) * se
        all_paired = all(p.n_pairs is not None for p in parts)
        counts = [p.n_pairs for p in parts]
        fixed = [p.n_fixed for p in parts]
        broken = [p.n_broken for p in parts]
        mdes = [p.mde for p in parts]
        est = stats.Estimate(
            value,
            baseline,
            delta,
            delta - half,
            delta + half,
            method="paired" if all_paired else "unpaired",
            n_pairs=sum(c for c in counts if c is not None) if all_paired else None,
            n_fixed=sum(f for f in fixed if f is not None) if all_paired and None not in fixed else None,
            n_broken=sum(b for b in broken if b is not None) if all_paired and None not in broken else None,
            p_value=stats.two_sided_p(delta, se) if se > 0 else (1.0 if delta == 0 else None),
            se=se,
            mde=math.sqrt(sum(m**2 for m in mdes if m is not None)) / k if None not in mdes else None,
        )
    return HEADLINE, est, True, _points(opts, value, baseline)
