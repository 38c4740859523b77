"""Latency metrics as DESIGN.md defines them (vLLM ``bench serve``): per request, per level, goodput, cost, rows."""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evals.latency.client import RequestResult
from evals.latency.loadgen import LevelRun
from evals.latency.predictability import percentile, predictability_columns
from evals.latency.scenario import RateLevel, Saturation
from evals.schemas import LATENCY_METRICS, LATENCY_STATS

_QUANTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}
# Above these the client, not the server, may have shaped the numbers: the row's notes say so.
CLIENT_WARN_LOOP_LAG_P99_MS = 5.0
CLIENT_WARN_SEND_LAG_P99_MS = 5.0
CLIENT_WARN_CPU_SHARE = 0.9


def summarize(values: Sequence[float]) -> dict[str, float | None]:
    """mean, p50, p90, p95, p99 of ``values``; all None when there are none."""
    if not values:
        return dict.fromkeys(LATENCY_STATS)
    stats: dict[str, float | None] = {"mean": math.fsum(values) / len(values)}
    stats.update({name: percentile(values, q) for name, q in _QUANTILES.items()})
    return stats


@dataclass(frozen=True)
class RequestMetrics:
    """One successful request's latencies in milliseconds."""

    ttft_ms: float
    e2e_ms: float
    tpot_ms: float | None  # undefined for a single output token
    itl_ms: list[float]


def request_metrics(result: RequestResult) -> RequestMetrics | None:
    """TTFT = first token − sent; E2E = last token − sent; TPOT = (E2E − TTFT)/(tokens − 1); ITL = token gaps."""
    if not result.ok or result.sent is None or not result.token_times:
        return None
    times = result.token_times
    ttft = (times[0] - result.sent) * 1e3
    e2e = (times[-1] - result.sent) * 1e3
    tokens = result.output_tokens or len(times)
    tpot = (e2e - ttft) / (tokens - 1) if tokens > 1 else None
    itl = [(b - a) * 1e3 for a, b in itertools.pairwise(times)]
    return RequestMetrics(ttft_ms=ttft, e2e_ms=e2e, tpot_ms=tpot, itl_ms=itl)


def _request_value(metrics: RequestMetrics, metric: str, stat: str) -> float | None:
    if metric == "itl":
        return summarize(metrics.itl_ms)[stat] if metrics.itl_ms else None
    return {"ttft": metrics.ttft_ms, "tpot": metrics.tpot_ms, "e2e": metrics.e2e_ms}[metric]


def meets_slo(metrics: RequestMetrics | None, slo: Mapping[str, float]) -> bool:
    """Whether one request meets every SLO limit (its own TTFT/TPOT/E2E; its own ITL at the SLO's stat).

    Failed requests never do. A limit on a value the request does not have (TPOT of one token) is not held
    against it.
    """
    if metrics is None:
        return False
    for key, limit in slo.items():
        metric, stat, _ = key.split("_")
        value = _request_value(metrics, metric, stat)
        if value is not None and value > limit:
            return False
    return True


def usd_per_1m_output_tokens(gpu_hour_usd: float, gpu_count: int, output_tokens_per_s: float) -> float | None:
    """gpu_hour_usd × gpu_count / (output_tokens_per_s × 3600) × 1e6; None without throughput or price."""
    if output_tokens_per_s <= 0 or gpu_hour_usd <= 0:
        return None
    return gpu_hour_usd * gpu_count / (output_tokens_per_s * 3600.0) * 1e6


@dataclass
class LevelSummary:
    """One level's metrics: the ``latency`` row plus what the CLI and saturation check need."""

    row: dict[str, Any]
    slo_met: bool | None  # level percentiles within every SLO limit; None without an SLO
    send_lag_p99_ms: float | None
    errors: dict[str, int]


def _error_kind(error: str) -> str:
    return error.split(":", 1)[0].split(" after ")[0]


def summarize_level(
    run: LevelRun,
    *,
    scenario: str,
    slo: Mapping[str, float],
    gpu_hour_usd: float,
    gpu_count: int,
    model_id: str,
    revision: str,
    input_tokens: int | None = None,
) -> LevelSummary:
    """The ``latency`` row of one level (run_id and eval_date are left to the warehouse).

    ``input_tokens``: the level's nominal context length in a prompt-length sweep (a level key), else None.
    """
    results = run.results
    per_request = [request_metrics(r) for r in results]
    good = [m for m in per_request if m is not None]
    ok_results = [r for r in results if r.ok]
    duration = max(run.duration_s, 1e-9)
    output_tokens = sum(r.output_tokens or 0 for r in ok_results)
    tokens_per_s = output_tokens / duration if results else 0.0
    row: dict[str, Any] = {
        "model_id": model_id,
        "revision": revision,
        "scenario": scenario,
        "load_type": run.level.load_type,
        "load": run.level.load,
        "n_requests": len(results),
        "n_failed": len(results) - len(ok_results),
        "duration_s": duration if results else 0.0,
    }
    values = {
        "ttft": [m.ttft_ms for m in good],
        "tpot": [m.tpot_ms for m in good if m.tpot_ms is not None],
        "itl": [gap for m in good for gap in m.itl_ms],
        "e2e": [m.e2e_ms for m in good],
    }
    for metric in LATENCY_METRICS:
        for stat, value in summarize(values[metric]).items():
            row[f"{metric}_{stat}_ms"] = value
    row.update(
        {
            "output_tokens_per_s": tokens_per_s,
            "requests_per_s": len(ok_results) / duration if results else 0.0,
            "goodput": sum(meets_slo(m, slo) for m in per_request) / len(results) if results else None,
            "slo": json.dumps(dict(slo), sort_keys=True),
            "gpu_hour_usd": gpu_hour_usd,
            "gpu_count": gpu_count,
            "usd_per_1m_output_tokens": usd_per_1m_output_tokens(gpu_hour_usd, gpu_count, tokens_per_s),
        }
    )
    row.update(
        predictability_columns(
            ttft_ms=values["ttft"], e2e_ms=values["e2e"], itl_ms=values["itl"], errors=[r.error for r in results]
        )
    )
    prompt_tokens = [float(r.prompt_tokens) for r in ok_results if r.prompt_tokens is not None]
    row.update(input_tokens=input_tokens, prompt_tokens_p50=percentile(prompt_tokens, 50) if prompt_tokens else None)
    lags = [(r.sent - r.scheduled) * 1e3 for r in results if r.sent is not None]
    row.update(client_columns(run, percentile(lags, 99) if lags else None))
    row.update(run.server)
    slo_met = None
    if slo:
        slo_met = all(row.get(key) is not None and row[key] <= limit for key, limit in slo.items())
    errors: dict[str, int] = {}
    for r in results:
        if r.error:
            errors[_error_kind(r.error)] = errors.get(_error_kind(r.error), 0) + 1
    return LevelSummary(row=row, slo_met=slo_met, send_lag_p99_ms=percentile(lags, 99) if lags else None, errors=errors)


def client_columns(run: LevelRun, send_lag_p99_ms: float | None) -> dict[str, Any]:
    """The load generator's saturation during the level, and a warning in ``notes`` when it limited the numbers."""
    loop_lag = percentile(run.loop_lag_ms, 99) if run.loop_lag_ms else None
    cpu_share = run.cpu_s / (run.wall_s * run.processes) if run.wall_s > 0 else None
    warnings = []
    if loop_lag is not None and loop_lag > CLIENT_WARN_LOOP_LAG_P99_MS:
        warnings.append(f"event-loop lag P99 {loop_lag:.1f} ms (token timestamps can be that late)")
    if send_lag_p99_ms is not None and send_lag_p99_ms > CLIENT_WARN_SEND_LAG_P99_MS:
        warnings.append(f"send lag P99 {send_lag_p99_ms:.1f} ms (requests left after their due time)")
    if cpu_share is not None and cpu_share > CLIENT_WARN_CPU_SHARE:
        warnings.append(f"load generator CPU {cpu_share:.0%} of a core per process")
    return {
        "client_processes": run.processes,
        "client_send_lag_p99_ms": send_lag_p99_ms,
        "client_loop_lag_p99_ms": loop_lag,
        "client_cpu_share": cpu_share,
        "notes": "client-limited: " + "; ".join(warnings) if warnings else None,
    }


def sample_rows(
    run: LevelRun, *, scenario: str, model_id: str, revision: str, input_tokens: int | None = None
) -> list[dict[str, Any]]:
    """One ``latency_samples`` row per measured request; times are seconds since the level (its first trial)
    started."""

    def since(moment: float | None) -> float | None:
        return None if moment is None else moment - run.start

    bounds = list(itertools.accumulate(run.trial_sizes))  # request indexes continue from trial to trial
    rows = []
    for r in run.results:
        rows.append(
            {
                "model_id": model_id,
                "revision": revision,
                "scenario": scenario,
                "load_type": run.level.load_type,
                "load": run.level.load,
                "request_index": r.index,
                "scheduled_s": since(r.scheduled),
                "sent_s": since(r.sent),
                "first_token_s": since(r.first_token),
                "finished_s": since(r.finished),
                "prompt_tokens": r.prompt_tokens,
                "output_tokens": r.output_tokens,
                "itl_ms": [(b - a) * 1e3 for a, b in itertools.pairwise(r.token_times)],
                "ok": r.ok,
                "error": r.error,
                "input_tokens": input_tokens,
                "trial": bisect.bisect_right(bounds, r.index) if bounds else None,
            }
        )
    return rows


def saturation_reason(run: LevelRun, summary: LevelSummary, criteria: Saturation) -> str | None:
    """Why this level counts as saturated (errors, queueing, or a load generator that fell behind), or None."""
    row = summary.row
    if row["n_requests"] and row["n_failed"] / row["n_requests"] > criteria.max_error_rate:
        kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(summary.errors.items(), key=lambda kv: -kv[1]))
        return f"error rate {row['n_failed'] / row['n_requests']:.0%} above {criteria.max_error_rate:.0%} ({kinds})"
    if summary.send_lag_p99_ms is not None and summary.send_lag_p99_ms > criteria.max_send_lag_p99_ms:
        return (
            f"the load generator fell behind: P99 send lag {summary.send_lag_p99_ms:.1f} ms above "
            f"{criteria.max_send_lag_p99_ms:g} ms (client-side queueing; numbers at this load are not "
            "the server's)"
        )
    if isinstance(run.level, RateLevel):
        ordered = [m for r in run.results if (m := request_metrics(r)) is not None]
        quarter = len(ordered) // 4
        if quarter >= 2:
            first = percentile([m.e2e_ms for m in ordered[:quarter]], 50)
            last = percentile([m.e2e_ms for m in ordered[-quarter:]], 50)
            if last > first * criteria.max_latency_growth and last - first > criteria.min_latency_growth_ms:
                return (
                    f"requests are queueing: median E2E grew from {first:.0f} ms to {last:.0f} ms "
                    f"({last / first:.1f}x) across the level; the server cannot sustain "
                    f"{run.level.rate:g} req/s"
                )
    return None
