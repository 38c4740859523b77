"""The serving decision, pure: the non-inferiority test's error rate and power, criteria, costs and outcomes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from evals.analysis.decision import (
    Accuracy,
    Evidence,
    GuardrailValue,
    combine,
    decide,
    non_inferiority,
    paired_non_inferiority,
    score_non_inferiority,
    score_z,
)
from evals.analysis.policy import Costing, LatencyLimits, Policy, Saving, Traffic
from evals.analysis.serving_cost import Side, demand, monthly_cost, replicas_needed

MARGIN = 0.02
ALPHA = 0.05
# (questions, share of questions the two models answer differently): sparse to dense disagreement.
DESIGNS = ((200, 0.1), (500, 0.1), (500, 0.3), (1000, 0.05), (2000, 0.2))
REPS = 4000


def _promote_rate(n: int, discordant: float, true_delta: float, rng: np.random.Generator) -> float:
    """Share of simulated nights whose paired 0/1 answers pass non-inferiority (the vectorized score test)."""
    p_fixed, p_broken = discordant / 2 + true_delta / 2, discordant / 2 - true_delta / 2
    cells = rng.multinomial(n, [p_fixed, p_broken, 1 - p_fixed - p_broken], REPS)
    z = score_z(cells[:, 0], cells[:, 1], n, -MARGIN)
    return float((z > 1.6448536269514722).mean())


def test_false_promote_rate_at_the_margin_is_at_most_alpha_and_power_is_stated() -> None:
    rng = np.random.default_rng(20261203)
    print(f"\nnon-inferiority, margin {MARGIN * 100:g} pts, alpha {ALPHA}, {REPS} simulated nights per row")
    print(f"{'n':>6} {'discordant':>10} {'P(promote | -margin)':>21} {'power (true 0)':>15}")
    for n, discordant in DESIGNS:
        false_promote = _promote_rate(n, discordant, -MARGIN, rng)
        power = _promote_rate(n, discordant, 0.0, rng)
        print(f"{n:>6} {discordant:>10.2f} {false_promote:>21.4f} {power:>15.3f}")
        # At most alpha, allowing the Monte Carlo error of REPS nights (2 SE = 0.7 points at 5 %).
        assert false_promote <= ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / REPS), (n, discordant)
        assert power > false_promote
    # Power grows with the number of questions.
    assert _promote_rate(2000, 0.2, 0.0, rng) > _promote_rate(200, 0.2, 0.0, rng)


def test_the_score_test_agrees_with_its_own_confidence_bound() -> None:
    for fixed, broken, n in ((30, 40, 500), (5, 1, 100), (0, 0, 50), (80, 60, 1000)):
        criterion = score_non_inferiority(fixed, broken, n, MARGIN, ALPHA)
        z = float(score_z(fixed, broken, n, -MARGIN))
        assert (criterion.status == "pass") == (z > 1.6448536269514722)
        assert criterion.ci_low is not None and criterion.ci_high is not None
        assert criterion.ci_low <= (fixed - broken) / n <= criterion.ci_high


def test_non_inferiority_statuses() -> None:
    assert non_inferiority(0.0, 0.005, 0.02, ALPHA).status == "pass"
    assert non_inferiority(-0.10, 0.01, 0.02, ALPHA).status == "fail"
    unsure = non_inferiority(-0.01, 0.02, 0.02, ALPHA)
    assert unsure.status == "inconclusive" and unsure.mde is not None and "supports a margin" in unsure.detail
    assert non_inferiority(0.0, None, 0.02, ALPHA).status == "inconclusive"


def test_paired_scores_use_the_score_test_for_0_1_and_t_otherwise() -> None:
    rng = np.random.default_rng(1)
    champion = (rng.random(1000) < 0.6).astype(float)
    assert paired_non_inferiority(champion, champion, MARGIN, ALPHA).status == "pass"
    worse = champion.copy()
    worse[:300] = 0.0
    assert paired_non_inferiority(worse, champion, MARGIN, ALPHA).status == "fail"
    graded = paired_non_inferiority(champion * 0.5 + 0.2, champion * 0.5 + 0.2, MARGIN, ALPHA)
    assert graded.status == "pass" and "paired questions" not in graded.detail


def _side(run_id: str, **kw: object) -> Side:
    base: dict[str, object] = {"model_id": run_id, "slo_tokens_per_s": 100.0, "gpu_hour_usd": 2.0, "gpu_count": 1}
    base.update(kw)
    return Side(run_id=run_id, **base)  # type: ignore[arg-type]


def test_monthly_cost_self_hosted_and_hosted() -> None:
    costing = Costing(hours_per_month=730, fixed_monthly_usd=100.0)
    traffic = Traffic(requests_per_s=1.0, output_tokens_per_request=250, input_tokens_per_request=1000)
    me = _side("a")
    out_tps, rps, in_tps = demand(traffic, None, me)
    assert (out_tps, rps, in_tps) == (250.0, 1.0, 1000.0)
    assert replicas_needed(250.0, 100.0) == 3
    assert monthly_cost(me, out_tps, in_tps, costing) == pytest.approx(3 * 2.0 * 730 + 100.0)
    hosted = _side("h", gpu_hour_usd=None, usd_per_1m_output_tokens=0.6, usd_per_1m_input_tokens=0.15)
    assert hosted.hosted
    seconds = 3600 * 730
    expected = 250 * seconds * 0.6 / 1e6 + 1000 * seconds * 0.15 / 1e6
    assert monthly_cost(hosted, out_tps, in_tps, costing) == pytest.approx(expected)
    assert monthly_cost(_side("none", slo_tokens_per_s=None), out_tps, in_tps, costing) is None


def _policy(**kw: object) -> Policy:
    fields: dict[str, object] = {"name": "p", "version": "1", "non_inferiority": {"smoke": 2.0}}
    fields.update(kw)
    return Policy.model_validate(fields)


def test_decide_outcomes() -> None:
    traffic = Traffic(requests_per_s=0.1, output_tokens_per_request=100)
    costing = Costing()
    champ = _side("champ")
    fast = np.linspace(10, 50, 200)
    ok = Accuracy("smoke", 0.0, None, n_pairs=1000, n_fixed=50, n_broken=50)
    policy = _policy(latency=LatencyLimits(ttft_p95_ms=100.0), saving=Saving(min_relative=0.0))
    promoted = decide(Evidence(_side("me", ttft_ms=tuple(fast)), champ, ok, suite="smoke"), policy, traffic, costing)
    assert promoted.outcome == "promote", promoted.reason
    assert promoted.challenger_monthly_usd == pytest.approx(2.0 * 730)

    bad = Accuracy("smoke", -0.2, None, n_pairs=1000, n_fixed=10, n_broken=210)
    rejected = decide(Evidence(_side("me"), champ, bad, suite="smoke"), _policy(), traffic, costing)
    assert rejected.outcome == "reject" and "accuracy:smoke failed" in rejected.reason

    few = Accuracy("smoke", -0.01, 0.03, method="unpaired")
    held = decide(Evidence(_side("me"), champ, few, suite="smoke"), _policy(), traffic, costing)
    assert held.outcome == "hold" and "supports a margin" in held.reason

    no_champion = decide(Evidence(_side("me"), None, None, suite="smoke"), _policy(), traffic, costing)
    assert no_champion.outcome == "hold" and "no champion run" in no_champion.reason

    guard = (GuardrailValue("guardrail:safety:refusals/acc", 0.95, 0.80, 0.01),)
    guarded = decide(Evidence(_side("me"), champ, ok, guard, suite="smoke"), _policy(), traffic, costing)
    assert guarded.outcome == "reject" and "guardrail" in guarded.reason

    dearer = decide(
        Evidence(_side("me", gpu_hour_usd=4.0), champ, ok, suite="smoke"),
        _policy(saving=Saving(basis="monthly_cost", min_relative=0.1)),
        traffic,
        costing,
    )
    assert dearer.outcome == "reject" and "saving:monthly_cost" in dearer.reason


def test_combine_orders_fail_before_inconclusive() -> None:
    from evals.analysis.decision import Criterion

    assert combine([Criterion("a", "pass", 1.0)])[0] == "promote"
    assert combine([Criterion("a", "inconclusive", None), Criterion("b", "fail", None)])[0] == "reject"
    assert combine([Criterion("a", "inconclusive", None), Criterion("b", "pass", None)])[0] == "hold"


def test_a_policy_with_predictability_limits_and_a_guardrail_score_floor(tmp_path: Path) -> None:
    from evals.pipeline.serving import load_serving

    serving = tmp_path / "serving.yaml"
    serving.write_text(
        "champion: package:smollm2\ntraffic: {requests_per_s: 0.1, output_tokens_per_request: 100}\n"
        "policy:\n  name: strict\n  version: 2\n  non_inferiority: {smoke: 2.0}\n  capacity: false\n"
        "  predictability: {max_ttft_tail_ratio: 3.0, max_error_rate: 0.01}\n"
        "  guardrail_score: {floor: 0.6}\n"
    )
    config = load_serving(serving)
    assert config is not None
    policy = config.policy
    assert policy.predictability.max_ttft_tail_ratio == 3.0 and policy.guardrail_score is not None
    assert policy.guardrail_score.suite == "guardrails"
    traffic, costing = config.traffic, config.cost
    champ, ok = _side("champ"), Accuracy("smoke", 0.0, None, n_pairs=1000, n_fixed=50, n_broken=50)
    rng = np.random.default_rng(3)
    steady = tuple(100 * np.exp(0.2 * rng.standard_normal(1000)))  # P99/P50 = exp(0.2 x 2.33) = 1.59
    spiky = tuple(100 * np.exp(0.8 * rng.standard_normal(1000)))  # 6.43
    safe = GuardrailValue("guardrail_score:guardrails", 0.6, 0.80, 0.03)

    def outcome(me: Side, score: GuardrailValue | None) -> tuple[str, str, dict[str, str]]:
        found = decide(Evidence(me, champ, ok, suite="smoke", guardrail_score=score), policy, traffic, costing)
        return found.outcome, found.reason, {c.name: c.status for c in found.criteria}

    good = _side("me", ttft_ms=steady, n_errors=0, n_requests=600)
    result, reason, statuses = outcome(good, safe)
    assert result == "promote", reason
    assert statuses == {
        "accuracy:smoke": "pass",
        "predictability:ttft_tail_ratio": "pass",
        "predictability:error_rate": "pass",
        "guardrail_score:guardrails": "pass",
    }
    result, reason, _ = outcome(_side("me", ttft_ms=spiky, n_errors=0, n_requests=600), safe)
    assert result == "reject" and "predictability:ttft_tail_ratio failed" in reason
    result, reason, _ = outcome(_side("me", ttft_ms=steady, n_errors=30, n_requests=600), safe)
    assert result == "reject" and "predictability:error_rate failed" in reason
    result, reason, _ = outcome(_side("me", ttft_ms=steady, n_errors=0, n_requests=100), safe)
    assert result == "hold" and "predictability:error_rate inconclusive" in reason and "needs >= 268" in reason
    # The control that refuses everything: 0.5 on the refusal part drags its score under the floor.
    result, reason, _ = outcome(good, GuardrailValue("guardrail_score:guardrails", 0.6, 0.33, 0.04))
    assert result == "reject" and "guardrail_score:guardrails failed" in reason
    result, reason, _ = outcome(good, None)  # no guardrail run tonight
    assert result == "hold" and "guardrail_score:guardrails inconclusive: no result tonight" in reason


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ("predictability: {max_p99_ratio: 3}", "policy.predictability.max_p99_ratio"),
        ("predictability: {max_error_rate: 2}", "policy.predictability.max_error_rate"),
        ("guardrail_score: {floor: 0.5, metric: acc}", "policy.guardrail_score.metric"),
        ("guardrail_score: {}", "policy.guardrail_score.floor"),
    ],
)
def test_a_bad_predictability_or_guardrail_field_is_a_config_error_naming_it(
    tmp_path: Path, policy: str, field: str
) -> None:
    from evals.errors import ConfigError
    from evals.pipeline.serving import load_serving

    serving = tmp_path / "serving.yaml"
    serving.write_text(
        f"champion: package:smollm2\ntraffic: {{requests_per_s: 1}}\npolicy:\n  name: p\n  version: 1\n  {policy}\n"
    )
    with pytest.raises(ConfigError, match=rf"serving config {serving}: {field}: "):
        load_serving(serving)
