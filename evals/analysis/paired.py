"""Paired per-question comparisons: documents matched by hash, SE of the mean difference, McNemar, flips.

Two revisions of one model answer most questions alike, so the variance of the per-question difference is far
smaller than the sum of the two runs' variances that an unpaired test uses (E. Miller, "Adding Error Bars to
Evals", 2024). Questions that share a passage or a subject are not independent: a group task's SE is clustered
by subtask when there are many subtasks, stratified by subtask when there are a few.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evals.analysis import power, stats

if TYPE_CHECKING:
    import numpy as np

    from evals.warehouse.views import ReadModel

Key = tuple[str, str, str]  # task, metric, filter


@dataclass(frozen=True)
class Pairs:
    """Matched per-document scores of one (task, metric, filter): ``value[i]`` and ``baseline[i]`` are one question.

    ``cluster[i]`` numbers the subtask a question belongs to (all 0 for a leaf task; None: no clusters).
    """

    value: np.ndarray
    baseline: np.ndarray
    cluster: np.ndarray | None = None


MIN_ROBUST_CLUSTERS = 30  # fewer clusters than this: a cluster-robust SE is too small (2 subtasks cover ~67 %)


def paired_diff(pairs: Pairs, *, alpha: float, planning_discordance: float | None = None) -> stats.Estimate:
    """Mean of value − baseline over the pairs with its CI, a p-value, and the MDE from the planning variance.

    The SE depends on the pairs' clusters (subtasks of a group):

    - none or one: sd(d)/√n, t with n − 1 degrees of freedom (``paired``);
    - 2 to ``MIN_ROBUST_CLUSTERS`` − 1: a fixed, small set of subtasks is a stratified sample, so the SE is
      √(Σ_g w_g² s_g² / n_g) with w_g = n_g / n and Welch-Satterthwaite degrees of freedom (``stratified``);
    - ``MIN_ROBUST_CLUSTERS`` or more: cluster-robust (CR1), t with G − 1 degrees of freedom (``clustered``).

    The p-value is McNemar's exact test for 0/1 scores (unless the SE is cluster-robust: questions of a cluster are
    not independent), else the t-test. Identical answers give delta 0, the CI [0, 0] and p 1; the MDE is still
    positive (see :func:`evals.analysis.power.planning_se`).
    """
    import numpy as np

    a = np.asarray(pairs.value, dtype=float)
    b = np.asarray(pairs.baseline, dtype=float)
    d = a - b
    n = len(d)
    delta = float(d.mean())
    groups = _groups(pairs.cluster)
    df: float | None
    if groups >= MIN_ROBUST_CLUSTERS:
        se, df, method = clustered_se(d, pairs.cluster), float(groups - 1), "clustered"
    elif groups >= 2:
        assert pairs.cluster is not None
        se, df = stratified_se(d, pairs.cluster)
        method = "stratified"
    else:
        se, df, method = clustered_se(d, None), float(n - 1), "paired"
    half = stats.quantile(1 - alpha / 2, df) * se
    binary = bool(np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all())
    fixed = int(((a == 1.0) & (b == 0.0)).sum()) if binary else None
    broken = int(((a == 0.0) & (b == 1.0)).sum()) if binary else None
    if binary and method != "clustered":
        p_value = float(mcnemar_p(np.asarray(fixed), np.asarray(broken)))
    elif se > 0:
        p_value = stats.two_sided_p(delta, se, df)
    else:
        p_value = 1.0 if delta == 0 else math.nan
    planning = power.planning_se(n, p=float(b.mean()) if n else math.nan, discordance=planning_discordance)
    return stats.Estimate(
        value=float(a.mean()),
        baseline_value=float(b.mean()),
        delta=delta,
        ci_low=delta - half,
        ci_high=delta + half,
        method=method,
        n_pairs=n,
        n_fixed=fixed,
        n_broken=broken,
        p_value=p_value,
        se=se,
        mde=power.mde(planning, alpha),
        df=df,
        notes=f"{groups} subtasks" if groups >= 2 else None,
    )


def _groups(cluster: np.ndarray | None) -> int:
    import numpy as np

    return 1 if cluster is None or len(cluster) == 0 else len(np.unique(cluster))


def stratified_se(d: np.ndarray, cluster: np.ndarray) -> tuple[float, float | None]:
    """SE of the mean of ``d`` over fixed strata ``cluster`` and its Welch-Satterthwaite degrees of freedom.

    var = Σ_g (n_g/n)² s_g²/n_g; a stratum of one question borrows the overall variance.
    """
    import numpy as np

    n = len(d)
    overall = float(d.var(ddof=1)) if n > 1 else 0.0
    parts: list[tuple[float, float | None]] = []
    for label in np.unique(cluster):
        x = d[cluster == label]
        size = len(x)
        variance = float(x.var(ddof=1)) if size > 1 else overall
        parts.append(((size / n) ** 2 * variance / size, float(max(size - 1, 1))))
    total = sum(v for v, _ in parts)
    return math.sqrt(total), stats.satterthwaite(parts)


def clustered_se(d: np.ndarray, cluster: np.ndarray | None) -> float:
    """SE of the mean of ``d``: sd/√n, or cluster-robust (CR1) when ``cluster`` (integer labels) has two or more.

    CR1 is trustworthy only with many clusters (``MIN_ROBUST_CLUSTERS``); :func:`paired_diff` stratifies below.
    """
    import numpy as np

    n = len(d)
    if n < 2:
        return math.nan
    if cluster is None or len(cluster) == 0 or cluster.min() == cluster.max():
        return float(d.std(ddof=1) / math.sqrt(n))
    _, index = np.unique(cluster, return_inverse=True)
    sums = np.bincount(index, weights=d - d.mean())
    groups = len(sums)
    return float(math.sqrt(groups / (groups - 1) * float((sums**2).sum())) / n)


def mcnemar_p(fixed: np.ndarray, broken: np.ndarray) -> np.ndarray:
    """McNemar's exact two-sided p-value from the discordant counts (vectorized over arrays of counts).

    Under no change each discordant question is a fair coin, so p = min(1, 2·P(X ≤ min(b, c))) with
    X ~ Binomial(b + c, ½) — scipy's ``binomtest(min, b + c, 0.5)`` for a single pair. No discordant pair: p = 1.
    """
    import numpy as np
    from scipy.stats import binom

    b = np.asarray(fixed)
    c = np.asarray(broken)
    total = b + c
    p = np.minimum(1.0, 2.0 * binom.cdf(np.minimum(b, c), total, 0.5))
    return np.where(total == 0, 1.0, p)


# ---------------------------------------------------------------------------------------------- from the warehouse

_PAIRS_SQL = """
with a as (
    select task, metric, filter, doc_hash, doc_id, value, response, target, aggregation,
           row_number() over (partition by task, metric, filter, doc_hash order by doc_id) as k
    from accuracy_samples where run_id = $run and eval_date = $day
), b as (
    select task, metric, filter, doc_hash, doc_id, value, response,
           row_number() over (partition by task, metric, filter, doc_hash order by doc_id) as k
    from accuracy_samples where run_id = $base and eval_date = $base_day
)
select a.task, a.metric, a.filter, a.aggregation, a.doc_id, b.doc_id as baseline_doc_id, a.value,
       b.value as baseline_value, a.target, a.response, b.response as baseline_response
from a join b using (task, metric, filter, doc_hash, k)
order by a.task, a.metric, a.filter, a.doc_id
"""


def matched(con: ReadModel, run: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[Key, dict[str, np.ndarray]]:
    """Per (task, metric, filter) of mean-aggregated metrics: both runs' scores of the documents both scored.

    Documents are matched by lm-eval's document hash, not by position (a reordered or resized task still pairs
    its common questions); a hash that occurs several times in a task pairs in doc_id order.
    """
    import numpy as np

    data = con.execute(
        _PAIRS_SQL,
        {"run": run["run_id"], "day": run["eval_date"], "base": baseline["run_id"], "base_day": baseline["eval_date"]},
    ).fetchnumpy()
    out: dict[Key, dict[str, np.ndarray]] = {}
    if not len(data["task"]):
        return out
    keys = list(zip(data["task"], data["metric"], data["filter"], strict=True))
    aggregation = np.asarray(data["aggregation"], dtype=object)
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    for start, stop in zip(starts, [*starts[1:], len(keys)], strict=True):
        if aggregation[start] != "mean":
            continue  # the mean of per-document differences is the task's difference only for mean aggregation
        out[tuple(str(x) for x in keys[start])] = {  # type: ignore[index]
            "value": np.asarray(data["value"][start:stop], dtype=float),
            "baseline": np.asarray(data["baseline_value"][start:stop], dtype=float),
        }
    return out


def pairs_for(
    task: str,
    metric: str,
    filter_: str,
    matches: Mapping[Key, Mapping[str, np.ndarray]],
    children: Mapping[str, Sequence[str]],
) -> Pairs | None:
    """The pairs of a task, or of a group: the pairs of every leaf below it, clustered by the group's direct child."""
    import numpy as np

    if (task, metric, filter_) in matches:
        own = matches[task, metric, filter_]
        return Pairs(own["value"], own["baseline"])
    values, baselines, clusters = [], [], []
    for number, child in enumerate(children.get(task, ())):
        for leaf in _leaves(child, children):
            m = matches.get((leaf, metric, filter_))
            if m is not None:
                values.append(m["value"])
                baselines.append(m["baseline"])
                clusters.append(np.full(len(m["value"]), number))
    if not values:
        return None
    return Pairs(np.concatenate(values), np.concatenate(baselines), np.concatenate(clusters))


def _leaves(task: str, children: Mapping[str, Sequence[str]], seen: frozenset[str] = frozenset()) -> list[str]:
    if task not in children or task in seen:
        return [task]
    return [leaf for child in children[task] for leaf in _leaves(child, children, seen | {task})]


_FLIPS_SQL = """
with a as (
    select task, metric, filter, doc_hash, doc_id, value, response, target,
           row_number() over (partition by task, metric, filter, doc_hash order by doc_id) as k
    from accuracy_samples where run_id = $run and eval_date = $day
), b as (
    select task, metric, filter, doc_hash, value, response,
           row_number() over (partition by task, metric, filter, doc_hash order by doc_id) as k
    from accuracy_samples where run_id = $base and eval_date = $base_day
)
select a.task, a.doc_id, a.metric, a.filter, a.target, a.response, b.response as baseline_response,
       a.value, b.value as baseline_value,
       case when a.value > b.value then 'fixed' else 'broken' end as change
from a join b using (task, metric, filter, doc_hash, k)
where a.value != b.value
order by a.task, a.metric, a.filter, a.doc_id
"""


def flips(con: ReadModel, run: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The questions whose score changed between ``baseline`` and ``run``: task, doc, target, both responses.

    ``change`` is ``fixed`` when the score went up, ``broken`` when it went down (whatever the metric's direction).
    """
    cursor = con.execute(
        _FLIPS_SQL,
        {"run": run["run_id"], "day": run["eval_date"], "base": baseline["run_id"], "base_day": baseline["eval_date"]},
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
