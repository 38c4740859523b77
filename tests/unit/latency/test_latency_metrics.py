"""Metric definitions on hand-made timelines: TTFT, TPOT, ITL, E2E, percentiles, goodput, cost, rows."""

from __future__ import annotations

import datetime as dt
import json
import random

import numpy as np
import pytest
from factories import ok_request

from evals.conformance import conform
from evals.latency.client import RequestResult
from evals.latency.loadgen import LevelRun
from evals.latency.metrics import (
    meets_slo,
    percentile,
    request_metrics,
    sample_rows,
    saturation_reason,
    summarize,
    summarize_level,
    usd_per_1m_output_tokens,
)
from evals.latency.scenario import ConcurrencyLevel, RateLevel, Saturation

KEYS = {"run_id": "r" * 16, "eval_date": dt.date(2026, 1, 1)}


def _failed(index: int, sent: float, error: str) -> RequestResult:
    return RequestResult(index=index, scheduled=sent, sent=sent, finished=sent + 0.5, ok=False, error=error)


@pytest.mark.parametrize("size", [1, 2, 7, 100, 1001])
def test_percentile_matches_numpy_linear(size: int) -> None:
    values = [random.Random(size).expovariate(1.0) for _ in range(size)]
    for q in (0, 1, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_summarize_and_empty() -> None:
    stats = summarize([1.0, 2.0, 3.0, 4.0])
    assert stats == {
        "mean": 2.5,
        "p50": 2.5,
        "p90": pytest.approx(3.7),
        "p95": pytest.approx(3.85),
        "p99": pytest.approx(3.97),
    }
    assert summarize([]) == dict.fromkeys(["mean", "p50", "p90", "p95", "p99"])
    with pytest.raises(ValueError):
        percentile([], 50)


def test_request_metrics_follow_the_definitions() -> None:
    # Sent at 10.0 s; tokens at +100 ms, +110, +130, +160 ms.
    metrics = request_metrics(ok_request(0, 10.0, [10.100, 10.110, 10.130, 10.160]))
    assert metrics is not None
    assert metrics.ttft_ms == pytest.approx(100.0)
    assert metrics.e2e_ms == pytest.approx(160.0)
    assert metrics.itl_ms == pytest.approx([10.0, 20.0, 30.0])
    assert metrics.tpot_ms == pytest.approx(60.0 / 3)


def test_tpot_uses_the_servers_token_count() -> None:
    # Two chunks, but the server's usage says 7 tokens (several tokens per chunk): TPOT over 6 gaps.
    metrics = request_metrics(ok_request(0, 0.0, [0.05, 0.11], output_tokens=7))
    assert metrics is not None and metrics.tpot_ms == pytest.approx(60.0 / 6)
    single = request_metrics(ok_request(0, 0.0, [0.05], output_tokens=1))
    assert single is not None and single.tpot_ms is None and single.itl_ms == []


def test_failed_requests_have_no_metrics_and_miss_the_slo() -> None:
    assert request_metrics(_failed(0, 0.0, "HTTP 500: boom")) is None
    assert not meets_slo(None, {})


def test_meets_slo_per_request() -> None:
    metrics = request_metrics(ok_request(0, 0.0, [0.100, 0.110, 0.150]))
    assert meets_slo(metrics, {"ttft_p95_ms": 100.0, "tpot_p95_ms": 25.0})
    assert not meets_slo(metrics, {"ttft_p95_ms": 99.0})
    assert not meets_slo(metrics, {"e2e_p50_ms": 149.0})
    assert not meets_slo(metrics, {"itl_p99_ms": 39.0})  # this request's own gaps are 10 and 40 ms
    assert meets_slo(metrics, {"itl_p50_ms": 25.0})


def test_cost_formula() -> None:
    # $2/GPU-hour, 4 GPUs, 1000 tok/s: 8 $/h over 3.6 M tokens/h.
    assert usd_per_1m_output_tokens(2.0, 4, 1000.0) == pytest.approx(8.0 / 3.6)
    assert usd_per_1m_output_tokens(2.0, 1, 0.0) is None
    assert usd_per_1m_output_tokens(0.0, 1, 100.0) is None


def _level_run() -> LevelRun:
    results = [
        ok_request(0, 0.0, [0.1, 0.2, 0.3]),
        ok_request(1, 0.0, [0.2, 0.25, 0.3, 0.35]),
        _failed(2, 0.3, "timeout after 1s (0 chunks received)"),
        ok_request(3, 0.4, [0.45, 0.5]),
    ]
    return LevelRun(level=ConcurrencyLevel(concurrency=2), start=0.0, results=results)


def test_level_row_metrics_goodput_and_cost() -> None:
    summary = summarize_level(
        _level_run(),
        scenario="s",
        slo={"ttft_p95_ms": 150.0},
        gpu_hour_usd=3.6,
        gpu_count=2,
        model_id="m",
        revision="rev",
    )
    row = summary.row
    assert (row["n_requests"], row["n_failed"]) == (4, 1)
    assert row["duration_s"] == pytest.approx(0.8)  # start to the end of the last request (the failed one)
    assert row["ttft_p50_ms"] == pytest.approx(100.0)  # TTFTs 100, 200, 50
    assert row["ttft_mean_ms"] == pytest.approx(350.0 / 3)
    assert row["e2e_p50_ms"] == pytest.approx(300.0)  # E2Es 300, 350, 100
    assert row["itl_p50_ms"] == pytest.approx(50.0)  # gaps 100, 100, 50, 50, 50, 50
    assert row["tpot_p50_ms"] == pytest.approx(50.0)  # TPOTs 100, 50, 50
    assert row["output_tokens_per_s"] == pytest.approx(9 / 0.8)
    assert row["requests_per_s"] == pytest.approx(3 / 0.8)
    assert row["goodput"] == pytest.approx(2 / 4)  # request 1 misses TTFT, request 2 failed
    assert summary.slo_met is False  # P95 TTFT is 195 ms
    assert json.loads(row["slo"]) == {"ttft_p95_ms": 150.0}
    assert row["usd_per_1m_output_tokens"] == pytest.approx(3.6 * 2 / (9 / 0.8 * 3600) * 1e6)
    assert summary.errors == {"timeout": 1}
    conform("latency", [{**row, **KEYS}])


def test_sample_rows_are_relative_to_the_level_start() -> None:
    run = _level_run()
    run.start = -1.0
    rows = sample_rows(run, scenario="s", model_id="m", revision="rev")
    assert [r["request_index"] for r in rows] == [0, 1, 2, 3]
    first = rows[0]
    assert (first["scheduled_s"], first["sent_s"]) == (1.0, 1.0)
    assert first["first_token_s"] == pytest.approx(1.1) and first["finished_s"] == pytest.approx(1.3)
    assert first["itl_ms"] == pytest.approx([100.0, 100.0])
    assert rows[2]["ok"] is False and rows[2]["error"].startswith("timeout") and rows[2]["first_token_s"] is None
    conform("latency_samples", [{**row, **KEYS} for row in rows])


def test_saturation_by_error_rate() -> None:
    run = _level_run()
    summary = summarize_level(run, scenario="s", slo={}, gpu_hour_usd=0, gpu_count=1, model_id="m", revision="r")
    assert saturation_reason(run, summary, Saturation(max_error_rate=0.3)) is None
    reason = saturation_reason(run, summary, Saturation(max_error_rate=0.2))
    assert reason is not None and "error rate 25% above 20%" in reason and "timeout x1" in reason


def _rate_run(e2e_ms: list[float], lag_s: float = 0.0) -> LevelRun:
    results = []
    for i, e2e in enumerate(e2e_ms):
        sent = i * 0.1 + lag_s
        results.append(
            RequestResult(
                index=i,
                scheduled=i * 0.1,
                sent=sent,
                token_times=[sent + 0.01, sent + e2e / 1e3],
                finished=sent + e2e / 1e3,
                output_tokens=2,
                ok=True,
            )
        )
    return LevelRun(level=RateLevel(rate=10), start=0.0, results=results)


def test_saturation_by_queueing_on_rate_levels() -> None:
    steady = _rate_run([100.0] * 16)
    growing = _rate_run([100.0 + 40.0 * i for i in range(16)])
    criteria = Saturation()
    for run, expected in ((steady, None), (growing, "requests are queueing")):
        summary = summarize_level(run, scenario="s", slo={}, gpu_hour_usd=0, gpu_count=1, model_id="m", revision="r")
        reason = saturation_reason(run, summary, criteria)
        assert (reason is None) if expected is None else (expected in (reason or ""))
    # The same growth on a closed loop is not queueing (concurrency bounds it).
    closed = LevelRun(level=ConcurrencyLevel(concurrency=1), start=0.0, results=growing.results)
    summary = summarize_level(closed, scenario="s", slo={}, gpu_hour_usd=0, gpu_count=1, model_id="m", revision="r")
    assert saturation_reason(closed, summary, criteria) is None


def test_saturation_when_the_generator_falls_behind() -> None:
    run = _rate_run([100.0] * 8, lag_s=0.2)
    summary = summarize_level(run, scenario="s", slo={}, gpu_hour_usd=0, gpu_count=1, model_id="m", revision="r")
    assert summary.send_lag_p99_ms == pytest.approx(200.0)
    reason = saturation_reason(run, summary, Saturation())
    assert reason is not None and "load generator fell behind" in reason


def test_empty_level_row_still_conforms() -> None:
    run = LevelRun(level=RateLevel(rate=1), start=0.0, results=[])
    row = summarize_level(run, scenario="s", slo={}, gpu_hour_usd=1, gpu_count=1, model_id="m", revision="r").row
    assert row["n_requests"] == 0 and row["goodput"] is None and row["ttft_p50_ms"] is None
    conform("latency", [{**row, **KEYS}])
