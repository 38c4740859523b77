"""Reducing a level's /metrics scrapes (vLLM's names and labels) to the server_* columns; client saturation notes."""

from __future__ import annotations

import pytest

from evals.latency.client import RequestResult
from evals.latency.loadgen import LevelRun
from evals.latency.metrics import client_columns
from evals.latency.scenario import ConcurrencyLevel
from evals.latency.server_metrics import EMPTY, summarize_scrapes


def _vllm(running: float, waiting: float, kv: float, queries: float, hits: float, queue: tuple[float, int]) -> str:
    label = 'engine="0",model_name="m"'
    return f"""# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{{label}}} {running}
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{{label}}} {waiting}
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{{{label}}} {kv}
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{{{label}}} {queries}
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{{{label}}} {hits}
# TYPE vllm:request_queue_time_seconds histogram
vllm:request_queue_time_seconds_bucket{{{label},le="0.1"}} {queue[1]}
vllm:request_queue_time_seconds_bucket{{{label},le="+Inf"}} {queue[1]}
vllm:request_queue_time_seconds_count{{{label}}} {queue[1]}
vllm:request_queue_time_seconds_sum{{{label}}} {queue[0]}
"""


def test_gauges_are_averaged_and_counters_histograms_are_deltas() -> None:
    texts = [
        _vllm(2, 0, 0.1, 1000, 100, (5.0, 100)),
        _vllm(8, 4, 0.5, 1500, 400, (5.5, 110)),
        _vllm(8, 2, 0.6, 2000, 600, (6.0, 120)),
    ]
    columns = summarize_scrapes(texts)
    assert columns["server_metrics_scrapes"] == 3
    assert columns["server_requests_running_mean"] == pytest.approx(6.0)
    assert columns["server_requests_waiting_mean"] == pytest.approx(2.0)
    assert columns["server_kv_cache_usage_mean"] == pytest.approx(0.4)  # the older vLLM name
    assert columns["server_prefix_cache_hit_rate"] == pytest.approx(500 / 1000)
    assert columns["server_queue_time_mean_ms"] == pytest.approx(1.0 / 20 * 1e3)
    assert columns["server_ttft_mean_ms"] is None  # not exposed: null, not 0


def test_no_scrapes_or_not_prometheus_gives_nulls() -> None:
    assert summarize_scrapes([]) == EMPTY
    assert summarize_scrapes(["<html>not found</html>"]) == EMPTY


def _run(send_lags_ms: list[float], loop_lags: list[float], cpu_s: float) -> LevelRun:
    results = [RequestResult(index=i, scheduled=1.0, sent=1.0 + lag / 1e3) for i, lag in enumerate(send_lags_ms)]
    return LevelRun(ConcurrencyLevel(concurrency=1), 0.0, results, loop_lag_ms=loop_lags, cpu_s=cpu_s, wall_s=1.0)


def test_a_saturated_client_is_noted_in_the_row() -> None:
    calm = client_columns(_run([0.1], [0.5] * 100, 0.2), 0.1)
    assert calm["notes"] is None and calm["client_cpu_share"] == pytest.approx(0.2)
    busy = client_columns(_run([0.1], [0.5] * 90 + [20.0] * 10, 0.97), 12.0)
    assert busy["notes"].startswith("client-limited: ")
    for words in ("event-loop lag P99 20.0 ms", "send lag P99 12.0 ms", "CPU 97% of a core"):
        assert words in busy["notes"]
