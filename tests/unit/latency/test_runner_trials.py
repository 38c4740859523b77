"""The scenario runner with trials, on hand-made level timelines whose saturation is known: queueing that builds
within each trial (and drains between trials) stops the level and the sweep; the gate expects what actually ran."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from factories import ok_request

from evals.latency import runner
from evals.latency.loadgen import LevelRun
from evals.latency.prompts import Prompt
from evals.latency.scenario import parse_scenario
from evals.latency.server import ServerHandle

REQUESTS = 16


def _scenario(*, stop: bool) -> Any:
    return parse_scenario(
        {
            "name": "trials",
            "version": 1,
            "api": "completions",
            "prompts": {"source": "synthetic", "input_tokens": 8},
            "output": {"max_tokens": 2},
            "levels": [{"rate": 5}, {"rate": 10}, {"rate": 20}],
            "requests_per_level": REQUESTS,
            "warmup_requests": 0,
            "trials": 3,
            "saturation": {"stop": stop},
        }
    )


def _served(calls: list[tuple[float, int]]) -> Any:
    """A load generator whose rate-5 trials are steady and whose rate-10+ trials queue: E2E grows 100 ms -> 700 ms
    across each trial, then starts again at 100 ms in the next (each trial waits for its requests to finish)."""

    async def run_level_processes(target: Any, prompts: Any, level: Any, **kw: Any) -> LevelRun:
        calls.append((level.load, kw["seed"]))
        start = 1000.0 * len(calls)
        results = []
        for i in range(REQUESTS):
            sent = start + i / level.load
            e2e = 0.1 if level.load < 10 else 0.1 + 0.04 * i
            results.append(ok_request(i, sent, [sent + 0.01, sent + e2e]))
        return LevelRun(level=level, start=start, results=results, prompts_used=kw["prompt_offset"] + REQUESTS)

    return run_level_processes


def _run(monkeypatch: pytest.MonkeyPatch, *, stop: bool) -> tuple[Any, list[tuple[float, int]]]:
    calls: list[tuple[float, int]] = []
    monkeypatch.setattr(runner, "run_level_processes", _served(calls))
    server = ServerHandle(endpoint="http://127.0.0.1:9", model="m", backend="external", accepts_ignore_eos=False)
    result = asyncio.run(
        runner.run_scenario_async(
            _scenario(stop=stop), server, [Prompt(text="x")], model_id="org/m", revision="a" * 40, hardware={}
        )
    )
    return result, calls


def test_a_trial_that_queues_stops_its_level_and_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = _run(monkeypatch, stop=True)
    # Rate 5: three trials, seeds 0, 3, 6 (one per trial, none shared with another level); rate 10: the first
    # trial queued, so its other two never ran; rate 20: skipped.
    assert calls == [(5.0, 0), (5.0, 3), (5.0, 6), (10.0, 1)]
    assert [(row["load"], row["n_trials"], row["n_requests"]) for row in result.latency_rows] == [
        (5.0, 3, 3 * REQUESTS),
        (10.0, 1, REQUESTS),
    ]
    assert result.skipped == ["rate 20"]
    assert any(note.startswith("rate 10: saturated: trial 1 of 3: requests are queueing") for note in result.notes)
    # The gate expects the requests of the trials that ran, not of the three the scenario asked for.
    assert result.issued_requests() == {("rate", 5.0): 3 * REQUESTS, ("rate", 10.0): REQUESTS}


def test_queueing_within_trials_is_seen_when_the_sweep_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pooled, the first quarter (trial 1's start) and the last (trial 3's end) would not differ as much as each
    # trial's own quarters do: each trial is checked on its own.
    result, calls = _run(monkeypatch, stop=False)
    assert [load for load, _ in calls] == [5.0] * 3 + [10.0] * 3 + [20.0] * 3
    saturated = [note for note in result.notes if "saturated" in note]
    assert [note.split(":")[0] for note in saturated] == ["rate 10", "rate 20"]
    assert all("trial 1 of 3: requests are queueing" in note for note in saturated)
