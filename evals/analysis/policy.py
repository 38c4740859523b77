"""The serving decision's declared inputs: the policy (named, versioned), the traffic, the prices — types only."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_SUITE = "*"  # a margin under this key applies to every suite without its own
HOURS_PER_MONTH = 730.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Traffic(_Strict):
    """What production must carry: requests per second or output tokens per day (exactly one)."""

    requests_per_s: float | None = Field(None, gt=0, description="Requests per second at the busy hour.")
    tokens_per_day: float | None = Field(None, gt=0, description="Output tokens per day.")
    output_tokens_per_request: float | None = Field(
        None, gt=0, description="Output tokens per request; unset: measured (the champion's reference level)."
    )
    input_tokens_per_request: float | None = Field(
        None, ge=0, description="Prompt tokens per request (hosted input prices); unset: measured."
    )

    @model_validator(mode="after")
    def _one_rate(self) -> Traffic:
        if (self.requests_per_s is None) == (self.tokens_per_day is None):
            raise ValueError("give exactly one of requests_per_s and tokens_per_day")
        return self


class Guardrail(_Strict):
    """A floor one metric of one suite must stay above (e.g. a safety suite's refusal accuracy)."""

    suite: str = Field(min_length=1)
    task: str = Field(min_length=1)
    metric: str = "acc"
    filter: str = "none"
    floor: float


class LatencyLimits(_Strict):
    """P95 limits at the scenario's reference load (what one user sees), in milliseconds."""

    ttft_p95_ms: float | None = Field(None, gt=0)
    e2e_p95_ms: float | None = Field(None, gt=0)


class PredictabilityLimits(_Strict):
    """How predictable the challenger's service must be, each limit judged with its uncertainty (unset: no limit)."""

    max_ttft_tail_ratio: float | None = Field(
        None, ge=1, description="Most P99/P50 TTFT at the reference load (its one-sided upper bound must be within)."
    )
    max_error_rate: float | None = Field(
        None, gt=0, lt=1, description="Most error rate over the run's requests (its Wilson upper bound must be within)."
    )


class GuardrailScore(_Strict):
    """A floor under the balanced guardrail score (:func:`evals.analysis.measures.guardrail_score`) of the
    challenger's run of ``suite`` on the same night."""

    suite: str = Field("guardrails", min_length=1)
    floor: float = Field(ge=0, le=1)


class Saving(_Strict):
    """The saving a challenger must bring: relative to the champion, in monthly cost or in cost per 1M at the SLO."""

    basis: Literal["monthly_cost", "cost_per_1m"] = "monthly_cost"
    min_relative: float = Field(0.0, ge=0, lt=1, description="0.1: the challenger costs at most 90 % of the champion.")


class Policy(_Strict):
    """What a challenger must show to replace the champion. Every criterion is judged with its uncertainty."""

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    alpha: float = Field(0.05, gt=0, lt=0.5, description="One-sided error rate of every test (false promote).")
    non_inferiority: dict[str, float] = Field(
        default_factory=dict,
        description=f"Margin per suite in accuracy points (headline, paired); '{DEFAULT_SUITE}': every other suite.",
    )
    guardrails: list[Guardrail] = Field(default_factory=list)
    capacity: bool = Field(True, description="Require the challenger to carry the stated traffic at the SLO.")
    max_replicas: int | None = Field(None, ge=1, description="Most replicas the traffic may need (unset: no limit).")
    latency: LatencyLimits = Field(default_factory=lambda: LatencyLimits(ttft_p95_ms=None, e2e_p95_ms=None))
    predictability: PredictabilityLimits = Field(
        default_factory=lambda: PredictabilityLimits(max_ttft_tail_ratio=None, max_error_rate=None)
    )
    guardrail_score: GuardrailScore | None = None
    saving: Saving | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("non_inferiority")
    @classmethod
    def _margins(cls, value: dict[str, float]) -> dict[str, float]:
        for suite, margin in value.items():
            if margin < 0:
                raise ValueError(f"margin of suite {suite!r} is negative ({margin}); margins are points >= 0")
        return value

    def margin_points(self, suite: str | None) -> float | None:
        """The non-inferiority margin of ``suite`` in accuracy points, or None when the policy sets none."""
        if suite is not None and suite in self.non_inferiority:
            return self.non_inferiority[suite]
        return self.non_inferiority.get(DEFAULT_SUITE)


class Price(_Strict):
    """What a model costs us: a GPU-hour price (self-hosted) or per-1M-token prices (hosted), complete."""

    gpu_hour_usd: float | None = Field(None, ge=0)
    gpu_count: int | None = Field(None, ge=1)
    usd_per_1m_input_tokens: float | None = Field(None, ge=0)
    usd_per_1m_output_tokens: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> Price:
        hosted = (self.usd_per_1m_input_tokens, self.usd_per_1m_output_tokens)
        if self.gpu_hour_usd is None and None in hosted:
            missing = "usd_per_1m_input_tokens" if hosted[0] is None else "usd_per_1m_output_tokens"
            raise ValueError(f"missing price {missing}: give gpu_hour_usd, or both per-1M token prices")
        return self


class Costing(_Strict):
    """How monthly cost is counted; ``prices`` (by model id or ref) override what the runs recorded."""

    hours_per_month: float = Field(HOURS_PER_MONTH, gt=0)
    fixed_monthly_usd: float = Field(0.0, ge=0, description="Added to a self-hosted model's monthly cost.")
    prices: dict[str, Price] = Field(default_factory=dict)
