"""The server's own view per level (Prometheus /metrics, scraped from the simulator) and the client's saturation
columns, in rows that fit the latency table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from evals.conformance import conform
from evals.latency.client import Target
from evals.latency.loadgen import run, run_level
from evals.latency.metrics import summarize_level
from evals.latency.prompts import Prompt
from evals.latency.scenario import ConcurrencyLevel
from evals.latency.server import ServerHandle
from evals.latency.simulator_metrics import PREFIX_CHARS
from evals.schemas import LATENCY_LEVEL_EXTRA

pytestmark = [pytest.mark.integration, pytest.mark.timing]


def test_server_metrics_and_client_saturation_fill_the_row(
    simulator_factory: Callable[..., AbstractContextManager[ServerHandle]],
) -> None:
    shared = "s" * PREFIX_CHARS  # every prompt after the first of each kind hits the "prefix cache"
    prompts = [Prompt(text=f"{shared} question {i}") for i in range(40)]
    with simulator_factory(ttft_ms=[30.0], itl_ms=[10.0]) as handle:
        target = Target(handle.endpoint, handle.model, "completions", max_tokens=8)
        level = run(
            run_level(
                target,
                prompts,
                ConcurrencyLevel(concurrency=4),
                requests=40,
                duration_s=None,
                warmup_requests=0,
                timeout_s=30,
                metrics_url=f"{handle.endpoint}/metrics",
                scrape_interval_s=0.05,
            )
        )
    row = summarize_level(level, scenario="view", slo={}, gpu_hour_usd=1, gpu_count=1, model_id="m", revision="r").row
    assert row["n_failed"] == 0
    # ~40 requests x 100 ms / 4 streams = ~1 s: many scrapes, 4 requests in flight nearly all the time.
    assert row["server_metrics_scrapes"] >= 5
    assert 2.0 <= row["server_requests_running_mean"] <= 4.0
    assert row["server_requests_waiting_mean"] == 0.0
    assert row["server_kv_cache_usage_mean"] == pytest.approx(row["server_requests_running_mean"] / 64)
    # The first request of the run saw the prefix fresh (it may fall before the first scrape); the rest hit.
    assert 0.95 <= row["server_prefix_cache_hit_rate"] <= 1.0
    assert row["server_queue_time_mean_ms"] == 0.0
    # The server's TTFT (its own clock, write of the first token) is the injected 30 ms plus its lateness.
    assert 30.0 <= row["server_ttft_mean_ms"] < 30.0 + 10.0
    assert row["server_ttft_mean_ms"] <= row["ttft_mean_ms"]
    assert row["client_processes"] == 1 and 0.0 < row["client_cpu_share"] < 1.5
    assert row["client_loop_lag_p99_ms"] is not None and row["client_send_lag_p99_ms"] is not None
    conform("latency", [{**row, "run_id": "r", "eval_date": dt.date(2026, 1, 1)}])


def test_a_server_without_metrics_leaves_the_columns_empty(
    simulator_factory: Callable[..., AbstractContextManager[ServerHandle]],
) -> None:
    with simulator_factory(ttft_ms=[5.0], itl_ms=[2.0]) as handle:
        target = Target(handle.endpoint, handle.model, "completions", max_tokens=4)
        level = run(
            run_level(
                target,
                [Prompt(text="hi")],
                ConcurrencyLevel(concurrency=2),
                requests=6,
                duration_s=None,
                warmup_requests=0,
                timeout_s=30,
                metrics_url=f"{handle.endpoint}/no-metrics-here",
            )
        )
    row = summarize_level(level, scenario="view", slo={}, gpu_hour_usd=1, gpu_count=1, model_id="m", revision="r").row
    assert all(row[name] is None for name in LATENCY_LEVEL_EXTRA if name.startswith("server_"))
