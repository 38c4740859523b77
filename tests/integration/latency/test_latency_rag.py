"""RAG-shaped load against the simulator with an injected prefill cost per prompt token: TTFT grows with input
length as injected, every (load, length) is a level of its own that passes the gate, and the SLO crossing lands
where the injected cost puts it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from factories import run_record

from evals.latency.metrics import percentile
from evals.latency.rag import slo_crossing
from evals.latency.runner import run_scenario
from evals.latency.scenario import load_scenario
from evals.latency.server import ServerHandle
from evals.latency.simulator import fetch_truth
from evals.validation.expected import Expected
from evals.validation.gate import validate

pytestmark = [pytest.mark.integration, pytest.mark.timing]


def key(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["load_type"], row["load"], row["input_tokens"]


# Injected: TTFT = 5 ms + 0.5 ms per prompt token. Steep on purpose: 10 ms of client or machine lateness at P95
# moves the SLO crossing by only 20 tokens.
BASE_MS, PREFILL_MS = 5.0, 0.5
SLO_MS = 500.0  # crossed where 5 + 0.5 x prompt tokens = 500: at 990 prompt tokens
LENGTHS = [128, 512, 1536]  # the tiny model's window is 2048: 1536 + question + output + template fits


def test_ttft_grows_with_input_length_as_the_injected_prefill_cost(
    simulator_factory: Callable[..., AbstractContextManager[ServerHandle]], tiny_model_dir: Path
) -> None:
    scenario, _ = load_scenario("rag")
    scenario = scenario.model_copy(
        update={
            "prompts": scenario.prompts.model_copy(update={"context_tokens": LENGTHS, "count": 4, "cap": False}),
            "output": scenario.output.model_copy(update={"max_tokens": 8}),
            "requests_per_level": 12,
            "warmup_requests": 1,
            "slo": {"ttft_p95_ms": SLO_MS},
        }
    )
    extra = ("--prefill-ms-per-token", str(PREFILL_MS))
    with simulator_factory(ttft_ms=[BASE_MS], itl_ms=[1.0], extra=extra) as handle:
        result = run_scenario(
            scenario, handle.endpoint, handle.model, tokenizer_dir=tiny_model_dir, server=handle, revision="a" * 40
        )
        truth = fetch_truth(handle.endpoint)
    rows = result.latency_rows
    assert [(r["load"], r["input_tokens"]) for r in rows] == [(c, n) for c in (1.0, 4.0) for n in LENGTHS]
    # The simulator injected exactly PREFILL_MS per prompt token it reported (its usage count).
    records = list(truth.values())
    assert all(r["prefill_ms"] == pytest.approx(PREFILL_MS * r["prompt_tokens"]) for r in records)
    for row in rows:
        assert row["n_failed"] == 0 and row["n_requests"] == 12 and row["error_rate"] == 0.0
        expected = BASE_MS + PREFILL_MS * row["prompt_tokens_p50"]
        # Never early; late by the client's and the simulator's lateness, up to ~10 ms on 2 cores at load 9-10.
        assert expected - 0.5 <= row["ttft_p50_ms"] <= expected + 15.0, (row["input_tokens"], row["ttft_p50_ms"])
        assert row["prompt_tokens_p50"] >= row["input_tokens"]  # the question and template come on top
    single = [r for r in rows if r["load"] == 1.0]
    slope = (single[-1]["ttft_p50_ms"] - single[0]["ttft_p50_ms"]) / (
        single[-1]["prompt_tokens_p50"] - single[0]["prompt_tokens_p50"]
    )
    assert slope == pytest.approx(PREFILL_MS, rel=0.05)
    # P95 TTFT crosses the SLO between 512 and 1536 context tokens, where the injected cost puts it: the same
    # interpolation over the P95 TTFT the simulator injected (base + cost x the prompt tokens it counted).
    crossing = slo_crossing([r["input_tokens"] for r in single], [r["ttft_p95_ms"] for r in single], SLO_MS)
    injected = [
        BASE_MS + PREFILL_MS * percentile([s["prompt_tokens"] for s in result.sample_rows if key(s) == key(r)], 95)
        for r in single
    ]
    truth_crossing = slo_crossing([r["input_tokens"] for r in single], injected, SLO_MS)
    assert (crossing.below, crossing.above) == (truth_crossing.below, truth_crossing.above) == (512, 1536)
    assert crossing.length == pytest.approx(truth_crossing.length, abs=60)  # 30 ms late at P95 (load 9.5)
    # Every (load, length) is a level of its own: the GX gate passes the run, samples included.
    record = run_record("simulator", revision="a" * 40, scenario="rag")
    report, _ = validate(record, result.tables(), expected=Expected(requests=result.issued_requests()))
    assert report.failures == [], [(f.table, f.description) for f in report.failures]
    assert {s["input_tokens"] for s in result.sample_rows} == set(LENGTHS)
