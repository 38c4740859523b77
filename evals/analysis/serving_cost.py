"""What serving a model costs: the traffic in tokens/s, replicas at the SLO, monthly cost self-hosted or hosted."""

from __future__ import annotations

import math
from dataclasses import dataclass

from evals.analysis.policy import Costing, Traffic


@dataclass(frozen=True)
class Side:
    """One run's operating numbers at its SLO (from :mod:`evals.analysis.measures`) and its prices."""

    run_id: str
    model_id: str
    slo_tokens_per_s: float | None = None  # output tokens/s of requests that met the SLO at the capacity level
    usd_per_1m_at_slo: float | None = None
    gpu_hour_usd: float | None = None
    gpu_count: int | None = None
    usd_per_1m_input_tokens: float | None = None
    usd_per_1m_output_tokens: float | None = None
    ttft_p95_ms: float | None = None  # at the reference level
    e2e_p95_ms: float | None = None
    ttft_ms: tuple[float, ...] = ()  # the reference level's successful requests
    e2e_ms: tuple[float, ...] = ()
    ttft_trial: tuple[int, ...] = ()  # the trial of each of ttft_ms (a level run as trials; else empty or all 0)
    e2e_trial: tuple[int, ...] = ()
    output_tokens_per_request: float | None = None
    input_tokens_per_request: float | None = None
    reference: str | None = None  # e.g. concurrency=1
    ttft_tail_ratio: float | None = None  # P99/P50 TTFT at the reference level, as stored
    n_errors: int | None = None  # failures other than timeouts over every load level of the run
    n_requests: int | None = None  # the requests those errors are counted over

    @property
    def hosted(self) -> bool:
        """Priced per token (a hosted API): no GPU-hour price, an output-token price."""
        return self.gpu_hour_usd is None and self.usd_per_1m_output_tokens is not None


def demand(traffic: Traffic, champion: Side | None, challenger: Side) -> tuple[float, float | None, float | None]:
    """(output tokens/s, requests/s, input tokens/s) the traffic means; request sizes from the config, else measured."""
    sides = [s for s in (champion, challenger) if s is not None]
    out_per_req = traffic.output_tokens_per_request or next(
        (s.output_tokens_per_request for s in sides if s.output_tokens_per_request), None
    )
    in_per_req = traffic.input_tokens_per_request
    if in_per_req is None:
        in_per_req = next((s.input_tokens_per_request for s in sides if s.input_tokens_per_request is not None), None)
    if traffic.tokens_per_day is not None:
        out_tps = traffic.tokens_per_day / 86400.0
        rps = out_tps / out_per_req if out_per_req else None
    else:
        rps = float(traffic.requests_per_s or 0.0)
        out_tps = rps * (out_per_req or 0.0)
    in_tps = rps * in_per_req if rps is not None and in_per_req is not None else None
    return out_tps, rps, in_tps


def replicas_needed(out_tps: float, slo_tokens_per_s: float | None) -> int | None:
    """ceil(traffic / capacity at SLO); None without a capacity (no level met the SLO)."""
    if not slo_tokens_per_s or slo_tokens_per_s <= 0:
        return None
    return max(1, math.ceil(out_tps / slo_tokens_per_s - 1e-9))


def monthly_cost(side: Side, out_tps: float, in_tps: float | None, costing: Costing) -> float | None:
    """Self-hosted: replicas x GPUs x gpu_hour_usd x hours (+ fixed); hosted: tokens x prices. None: not priced."""
    hours = costing.hours_per_month
    if side.hosted:
        out_cost = out_tps * 3600 * hours * float(side.usd_per_1m_output_tokens or 0.0) / 1e6
        in_cost = (in_tps or 0.0) * 3600 * hours * float(side.usd_per_1m_input_tokens or 0.0) / 1e6
        return out_cost + in_cost
    replicas = replicas_needed(out_tps, side.slo_tokens_per_s)
    if replicas is None or side.gpu_hour_usd is None:
        return None
    return replicas * (side.gpu_count or 1) * side.gpu_hour_usd * hours + costing.fixed_monthly_usd


def cost_per_1m(side: Side) -> float | None:
    """USD per 1M output tokens at the SLO: measured (self-hosted) or the output price (hosted)."""
    return side.usd_per_1m_output_tokens if side.hosted else side.usd_per_1m_at_slo
