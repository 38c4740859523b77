"""The shipped multi-turn and shared-prefix scenarios run end to end against the simulator (levels shortened),
and the server's view shows what they are for: prompts whose beginnings the server has seen before."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from evals.conformance import conform
from evals.latency.runner import run_scenario
from evals.latency.scenario import load_scenario
from evals.latency.server import ServerHandle

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("name", "prompts", "shorter", "min_hit_rate"),
    [
        ("shared-prefix", {"prefix_tokens": 256}, {"requests_per_level": 16, "warmup_requests": 2}, 0.8),
        ("multi-turn-chat", {"conversations": 4, "turns": 3}, {"requests_per_level": 12}, 0.2),
    ],
)
def test_shipped_scenario_runs_on_the_simulator(
    simulator_factory: Callable[..., AbstractContextManager[ServerHandle]],
    tiny_model_dir: Path,
    name: str,
    prompts: dict[str, int],
    shorter: dict[str, int],
    min_hit_rate: float,
) -> None:
    scenario, _ = load_scenario(name)
    scenario = scenario.model_copy(
        update={**shorter, "prompts": scenario.prompts.model_copy(update=prompts), "levels": scenario.levels[:2]}
    )
    with simulator_factory(ttft_ms=[5.0], itl_ms=[1.0]) as handle:
        result = run_scenario(
            scenario, handle.endpoint, handle.model, tokenizer_dir=tiny_model_dir, server=handle, revision="r" * 40
        )
    rows = result.latency_rows
    assert [row["load"] for row in rows] == [1.0, float(scenario.levels[1].concurrency)]  # type: ignore[union-attr]
    for row in rows:
        assert row["n_failed"] == 0 and row["n_requests"] == shorter["requests_per_level"]
        assert row["server_metrics_scrapes"] >= 2
        assert row["server_prefix_cache_hit_rate"] >= min_hit_rate
    conform("latency", [{**row, "run_id": "x", "eval_date": dt.date(2026, 1, 1)} for row in rows])
