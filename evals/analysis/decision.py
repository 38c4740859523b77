"""The serving decision, pure: a challenger against the champion, criterion by criterion -> promote | hold | reject.

Every criterion is a one-sided test at the policy's alpha with three outcomes: ``pass`` (the bound is on the right
side of the margin or limit), ``fail`` (the opposite bound is on the wrong side: shown worse beyond the margin) or
``inconclusive`` (the interval straddles it: more data needed; the MDE says how much the test can tell).

- Non-inferiority per suite: challenger - champion headline accuracy, paired per question where both runs have
  samples; pass when the lower bound of the one-sided (1 - alpha) CI (Student t, n - 1 df) is above -margin.
- Guardrail floors: the metric's one-sided bounds against its floor.
- Latency: P95 TTFT/E2E at the reference load, distribution-free order-statistic bounds of the P95 against the limit,
  widened by the spread between the level's trials where it ran as trials (:mod:`evals.analysis.limits`).
- Capacity: ceil(traffic / capacity at SLO) replicas within ``max_replicas`` (hosted: the measured capacity).
- Saving: monthly cost at the traffic (or cost per 1M at the SLO) at most (1 - min_relative) x the champion's.
- Predictability: P99/P50 TTFT and the error rate within the policy's limits (:mod:`evals.analysis.limits`).
- Guardrail score: the balanced score of the challenger's guardrail run, its one-sided bounds against the floor.

Outcome: ``reject`` if any criterion failed, else ``hold`` if any is inconclusive, else ``promote``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

from evals.analysis.policy import Costing, Policy, Traffic
from evals.analysis.serving_cost import Side, cost_per_1m, demand, monthly_cost, replicas_needed

STATUSES = ("pass", "fail", "inconclusive")
OUTCOMES = ("promote", "hold", "reject")
POWER = 0.8  # the power at which MDEs are stated


@dataclass(frozen=True)
class Criterion:
    """One criterion of a decision: estimate, CI (one-sided bounds at 1 - alpha), margin/limit, status, why."""

    name: str
    status: str
    estimate: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    limit: float | None = None  # the bound the estimate is judged against (-margin, a limit, a floor)
    unit: str = ""
    detail: str = ""
    mde: float | None = None
    evidence: str | None = None  # the rows it was computed from

    def to_json(self) -> dict[str, Any]:
        return {k: (_finite(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Decision:
    outcome: str
    reason: str
    criteria: tuple[Criterion, ...]
    challenger_monthly_usd: float | None = None
    champion_monthly_usd: float | None = None


@dataclass(frozen=True)
class Accuracy:
    """challenger - champion headline accuracy of one suite (fractions), with its SE and how it was paired."""

    suite: str | None
    delta: float
    se: float | None
    method: str = "paired"
    n_pairs: int | None = None
    n_fixed: int | None = None  # 0/1 scores: questions the challenger gets right and the champion wrong
    n_broken: int | None = None
    value: float | None = None
    champion_value: float | None = None
    evidence: str | None = None

    @property
    def counts(self) -> tuple[int, int, int] | None:
        """(fixed, broken, pairs) when the delta is exactly their difference (every task 0/1, one pool)."""
        f, b, n = self.n_fixed, self.n_broken, self.n_pairs
        if self.method != "paired" or f is None or b is None or not n or abs((f - b) / n - self.delta) > 1e-9:
            return None
        return f, b, n


@dataclass(frozen=True)
class GuardrailValue:
    name: str  # suite:task/metric
    floor: float
    value: float | None
    se: float | None = None
    evidence: str | None = None


@dataclass(frozen=True)
class Evidence:
    challenger: Side
    champion: Side | None
    accuracy: Accuracy | None = None
    guardrails: tuple[GuardrailValue, ...] = field(default_factory=tuple)
    suite: str | None = None
    guardrail_score: GuardrailValue | None = None  # :func:`evals.analysis.measures.guardrail_headline` of tonight


# ---------------------------------------------------------------------------------------------- tests


def _quantile(alpha: float, df: int | None) -> float:
    """The one-sided (1 - alpha) quantile: Student t with ``df`` degrees of freedom, normal without."""
    if df is not None and df >= 1:
        from scipy.stats import t

        return float(t.ppf(1 - alpha, df))
    return NormalDist().inv_cdf(1 - alpha)


def non_inferiority(
    delta: float, se: float | None, margin: float, alpha: float, *, df: int | None = None, name: str = "accuracy"
) -> Criterion:
    """challenger - champion = ``delta`` (SE ``se``) is non-inferior when its one-sided lower bound > -margin.

    ``fail``: even the upper bound is below -margin. The MDE is the margin this comparison supports with 80 % power
    when the true difference is 0: (q(1 - alpha) + z(power)) x SE.
    """
    if se is None or not math.isfinite(se):
        return Criterion(name, "inconclusive", delta, limit=-margin, unit="points", detail="no standard error")
    q = _quantile(alpha, df)
    low, high = delta - q * se, delta + q * se
    mde = (q + NormalDist().inv_cdf(POWER)) * se
    if low > -margin:
        status, detail = "pass", f"lower bound {_pts(low)} > {_pts(-margin)} (margin)"
    elif high < -margin:
        status, detail = "fail", f"worse than the margin: upper bound {_pts(high)} < {_pts(-margin)}"
    else:
        status = "inconclusive"
        detail = f"CI [{_pts(low)}, {_pts(high)}] straddles {_pts(-margin)}; supports a margin of {mde * 100:.2f} pts"
    return Criterion(name, status, delta, low, high, -margin, "points", detail, mde)


def paired_non_inferiority(
    challenger: Sequence[float], champion: Sequence[float], margin: float, alpha: float
) -> Criterion:
    """Non-inferiority of per-question scores paired by position: Tango's score test for 0/1 scores, else t."""
    import numpy as np

    from evals.analysis.paired import clustered_se

    a, b = np.asarray(challenger, dtype=float), np.asarray(champion, dtype=float)
    if len(a) < 2:
        return Criterion("accuracy", "inconclusive", None, limit=-margin, unit="points", detail="fewer than 2 pairs")
    if np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all():
        fixed, broken = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
        return score_non_inferiority(fixed, broken, len(a), margin, alpha)
    d = a - b
    return non_inferiority(float(d.mean()), clustered_se(d, None), margin, alpha, df=len(d) - 1)


def score_z(fixed: Any, broken: Any, n: int, delta0: float) -> Any:
    """Tango's (1998) score statistic of H0: p(fixed) - p(broken) = ``delta0`` for paired 0/1 scores (vectorized).

    The variance is taken under H0 at the restricted maximum-likelihood estimate of p(broken), which keeps the
    test's size near alpha even with few discordant questions (where the Wald interval promotes too often).
    """
    import numpy as np

    b, c = np.asarray(fixed, dtype=float), np.asarray(broken, dtype=float)
    big_a = 2.0 * n
    big_b = -(b + c) + delta0 * (2.0 * n - b + c)
    big_c = -c * delta0 * (1.0 - delta0)
    p_broken = (-big_b + np.sqrt(np.maximum(big_b**2 - 4 * big_a * big_c, 0.0))) / (2 * big_a)
    variance = np.maximum((2 * p_broken + delta0 - delta0**2) / n, 1e-300)
    return ((b - c) / n - delta0) / np.sqrt(variance)


def score_bound(fixed: int, broken: int, n: int, alpha: float, *, upper: bool) -> float:
    """The one-sided (1 - alpha) bound of p(fixed) - p(broken) from inverting :func:`score_z` (bisection)."""
    q = _quantile(alpha, None)
    observed = (fixed - broken) / n
    lo, hi = (observed, 1.0) if upper else (-1.0, observed)
    for _ in range(60):
        mid = (lo + hi) / 2
        z = float(score_z(fixed, broken, n, mid))
        inside = z > -q if upper else z < q  # mid is still a plausible difference
        if inside == upper:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def score_non_inferiority(
    fixed: int, broken: int, n: int, margin: float, alpha: float, *, name: str = "accuracy"
) -> Criterion:
    """Non-inferiority of paired 0/1 scores from the discordant counts: pass when Tango's score test rejects
    p(fixed) - p(broken) <= -margin at ``alpha``; the CI is the score test inverted."""
    import numpy as np

    from evals.analysis.paired import clustered_se

    delta = (fixed - broken) / n
    low = score_bound(fixed, broken, n, alpha, upper=False)
    high = score_bound(fixed, broken, n, alpha, upper=True)
    d = np.concatenate([np.ones(fixed), -np.ones(broken), np.zeros(n - fixed - broken)])
    se = clustered_se(d, None)
    mde = (_quantile(alpha, None) + _z(POWER)) * se if math.isfinite(se) else None
    if low > -margin:
        status, detail = "pass", f"lower bound {_pts(low)} > {_pts(-margin)} (margin)"
    elif high < -margin:
        status, detail = "fail", f"worse than the margin: upper bound {_pts(high)} < {_pts(-margin)}"
    else:
        status = "inconclusive"
        supports = f"; supports a margin of {mde * 100:.2f} pts" if mde is not None else ""
        detail = f"CI [{_pts(low)}, {_pts(high)}] straddles {_pts(-margin)}{supports}"
    detail += f" ({fixed} fixed, {broken} broken of {n} paired questions)"
    return Criterion(name, status, delta, low, high, -margin, "points", detail, mde)


def floor_test(name: str, value: float | None, se: float | None, floor: float, alpha: float) -> Criterion:
    """A guardrail: pass when the one-sided lower bound of ``value`` is >= ``floor``; fail when the upper is below."""
    if value is None:
        return Criterion(name, "inconclusive", None, limit=floor, detail="no result tonight")
    if se is None or not math.isfinite(se):
        status = "pass" if value >= floor else "fail"
        return Criterion(name, status, value, limit=floor, detail="no standard error: judged on the value")
    q = _quantile(alpha, None)
    low, high = value - q * se, value + q * se
    status = "pass" if low >= floor else "fail" if high < floor else "inconclusive"
    return Criterion(name, status, value, low, high, floor, detail=f"floor {floor:g}", mde=(q + _z(POWER)) * se)


# ---------------------------------------------------------------------------------------------- traffic and cost


def capacity_test(side: Side, out_tps: float, max_replicas: int | None) -> Criterion:
    """The challenger carries the traffic at the SLO: within ``max_replicas`` replicas (hosted: as measured)."""
    cap = side.slo_tokens_per_s
    need = f"traffic {out_tps:.1f} output tok/s"
    if not cap:
        return Criterion("capacity", "fail", None, limit=out_tps, unit="tok/s", detail="no load level met the SLO")
    if side.hosted:
        status = "pass" if cap >= out_tps else "inconclusive"
        detail = f"{need}; the scenario loaded the endpoint to {cap:.1f} tok/s at the SLO"
        return Criterion("capacity", status, cap, limit=out_tps, unit="tok/s", detail=detail)
    replicas = replicas_needed(out_tps, cap) or 1
    ok = max_replicas is None or replicas <= max_replicas
    detail = f"{need} needs {replicas} replica(s) of {cap:.1f} tok/s" + (
        "" if max_replicas is None else f" (at most {max_replicas})"
    )
    limit = out_tps / max_replicas if max_replicas else None
    return Criterion("capacity", "pass" if ok else "fail", cap, limit=limit, unit="tok/s/replica", detail=detail)


def saving_test(basis: str, mine: float | None, theirs: float | None, min_relative: float) -> Criterion:
    """The relative change of cost, challenger / champion - 1, must be <= -min_relative."""
    name = f"saving:{basis}"
    if mine is None or theirs is None or theirs <= 0:
        missing = "challenger" if mine is None else "champion"
        return Criterion(name, "inconclusive", None, limit=-min_relative, detail=f"no {basis} of the {missing}")
    change = mine / theirs - 1
    status = "pass" if change <= -min_relative else "fail"
    detail = f"{mine:,.2f} vs {theirs:,.2f} USD ({change:+.1%}; needs <= {-min_relative:+.1%})"
    return Criterion(name, status, change, limit=-min_relative, unit="relative", detail=detail)


# ---------------------------------------------------------------------------------------------- the decision


def decide(evidence: Evidence, policy: Policy, traffic: Traffic, costing: Costing) -> Decision:
    """Every criterion of ``policy`` for the challenger of ``evidence``, and the outcome."""
    from evals.analysis.limits import latency_limit, predictability_criteria  # they build on Criterion

    me, champ = evidence.challenger, evidence.champion
    out_tps, _, in_tps = demand(traffic, champ, me)
    mine = monthly_cost(me, out_tps, in_tps, costing)
    theirs = monthly_cost(champ, out_tps, in_tps, costing) if champ is not None else None
    criteria: list[Criterion] = []
    if champ is None:
        criteria.append(Criterion("champion", "inconclusive", None, detail="no champion run of this suite tonight"))
    margin = policy.margin_points(evidence.suite)
    acc = evidence.accuracy
    if margin is None:
        if evidence.suite is not None:
            detail = f"the policy sets no margin for suite {evidence.suite}"
            criteria.append(Criterion(f"accuracy:{evidence.suite}", "inconclusive", None, detail=detail))
    elif acc is None:
        detail = "no accuracy result of both runs"
        criteria.append(
            Criterion(f"accuracy:{evidence.suite}", "inconclusive", None, limit=-margin / 100, detail=detail)
        )
    else:
        name = f"accuracy:{acc.suite}"
        if acc.counts is not None:
            test = score_non_inferiority(*acc.counts, margin / 100, policy.alpha, name=name)
        else:
            df = acc.n_pairs - 1 if acc.method == "paired" and acc.n_pairs else None
            test = non_inferiority(acc.delta, acc.se, margin / 100, policy.alpha, df=df, name=name)
        criteria.append(_with(test, evidence=acc.evidence))
    for g in evidence.guardrails:
        criteria.append(_with(floor_test(g.name, g.value, g.se, g.floor, policy.alpha), evidence=g.evidence))
    for metric, limit, samples, trials, point in (
        ("ttft_p95_ms", policy.latency.ttft_p95_ms, me.ttft_ms, me.ttft_trial, me.ttft_p95_ms),
        ("e2e_p95_ms", policy.latency.e2e_p95_ms, me.e2e_ms, me.e2e_trial, me.e2e_p95_ms),
    ):
        if limit is not None:
            test = latency_limit(f"latency:{metric}", point, samples, limit, policy.alpha, trials=trials)
            criteria.append(_with(test, evidence=f"latency_samples {me.run_id} @{me.reference}"))
    criteria.extend(predictability_criteria(me, policy.predictability, policy.alpha))
    if policy.guardrail_score is not None:
        floor, name = policy.guardrail_score.floor, f"guardrail_score:{policy.guardrail_score.suite}"
        g = evidence.guardrail_score or GuardrailValue(name, floor, None)
        criteria.append(_with(floor_test(name, g.value, g.se, floor, policy.alpha), evidence=g.evidence))
    if policy.capacity:
        criteria.append(_with(capacity_test(me, out_tps, policy.max_replicas), evidence=f"latency {me.run_id}"))
    if policy.saving is not None:
        if policy.saving.basis == "monthly_cost":
            pair = (mine, theirs)
        else:
            pair = (cost_per_1m(me), cost_per_1m(champ) if champ is not None else None)
        test = saving_test(policy.saving.basis, *pair, policy.saving.min_relative)
        criteria.append(_with(test, evidence=f"latency {me.run_id} vs {champ.run_id if champ else '-'}"))
    outcome, reason = combine(criteria)
    return Decision(outcome, reason, tuple(criteria), mine, theirs)


def combine(criteria: Sequence[Criterion]) -> tuple[str, str]:
    """(outcome, reason): reject names what failed and by how much; hold names what lacked power and its MDE."""
    failed = [c for c in criteria if c.status == "fail"]
    if failed:
        return "reject", "; ".join(f"{c.name} failed: {c.detail}" for c in failed)
    unsure = [c for c in criteria if c.status == "inconclusive"]
    if unsure:
        return "hold", "; ".join(f"{c.name} inconclusive: {c.detail}" for c in unsure)
    return "promote", "every criterion passed" if criteria else "the policy has no criteria"


def _with(criterion: Criterion, **changes: Any) -> Criterion:
    import dataclasses

    return dataclasses.replace(criterion, **changes)


def _pts(value: float) -> str:
    return f"{value * 100:+.2f} pts" if value else "0 pts"


def _z(p: float) -> float:
    return NormalDist().inv_cdf(p)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
