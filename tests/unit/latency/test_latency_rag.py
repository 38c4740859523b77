"""The RAG scenario kind: lengths within the context window (or a clear error), the SLO crossing, abandonment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from evals.analysis.abandonment import slo_effective_accuracy
from evals.conformance import conform
from evals.errors import ConfigError
from evals.latency.prompts import Prompt
from evals.latency.rag import TEMPLATE_TOKENS, by_length, slo_crossing, swept_lengths
from evals.latency.scenario import RagPrompts, load_scenario, parse_scenario


def _rag(**prompts: Any) -> dict[str, Any]:
    return {
        "name": "rag-test",
        "version": "1",
        "api": "completions",
        "prompts": {"source": "rag", "context_tokens": [512, 1024, 2048, 4096], **prompts},
        "output": {"max_tokens": 64},
        "levels": [{"concurrency": 1}],
    }


def test_the_shipped_rag_scenario_sweeps_512_to_8k_and_caps() -> None:
    scenario, path = load_scenario("rag")
    assert isinstance(scenario.prompts, RagPrompts) and path.name == "rag.yaml"
    assert scenario.prompts.context_tokens == [512, 1024, 2048, 4096, 8192] and scenario.prompts.cap
    assert scenario.slo == {"ttft_p95_ms": 500}


def test_a_prompt_longer_than_the_window_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "too-long.yaml"
    path.write_text(yaml.safe_dump(_rag(context_window=2048)))
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert str(path) in message and "prompts.context_tokens[2]" in message and "2048 context" in message
    assert f"longest context that fits is {2048 - 32 - 64 - TEMPLATE_TOKENS}" in message and "prompts.cap" in message


def test_cap_sweeps_the_lengths_that_fit_and_ends_at_the_window() -> None:
    scenario = parse_scenario(_rag(context_window=2048, cap=True))
    room = 2048 - 32 - 64 - TEMPLATE_TOKENS
    assert swept_lengths(scenario, 2048, "test", source="s.yaml") == [512, 1024, room]
    assert swept_lengths(scenario, 8192, "test", source="s.yaml") == [512, 1024, 2048, 4096]
    with pytest.raises(ConfigError, match="no context fits"):
        swept_lengths(scenario, 100, "test", source="s.yaml")


@pytest.mark.parametrize("lengths", [[1024, 512], [512, 512], [0, 512]])
def test_context_lengths_must_ascend(lengths: list[int]) -> None:
    with pytest.raises(ConfigError, match=r"prompts.context_tokens: context lengths must be positive and strictly"):
        parse_scenario(_rag(context_tokens=lengths), source="x.yaml")


def test_prompts_group_by_length_shortest_first() -> None:
    prompts = [Prompt(text="b", context_tokens=2048), Prompt(text="a", context_tokens=512), Prompt(text="c")]
    assert {k: [p.text for p in v] for k, v in by_length(prompts).items()} == {None: ["c"], 512: ["a"], 2048: ["b"]}
    assert list(by_length(prompts)) == [None, 512, 2048]


def test_slo_crossing_interpolates_between_the_bracketing_lengths() -> None:
    # 100 ms at 1k, 700 ms at 2k: 500 ms is 2/3 of the way: 1024 + 2/3 x 1024.
    crossing = slo_crossing([4096, 1024, 512, 2048], [1500.0, 100.0, 50.0, 700.0], 500.0)
    assert crossing.below == 1024 and crossing.above == 2048
    assert crossing.length == pytest.approx(1024 + 1024 * 400 / 600)
    never = slo_crossing([512, 1024], [50.0, None], 500.0)
    assert (never.length, never.below, never.above) == (None, 512, None)
    at_once = slo_crossing([512, 1024], [600.0, 900.0], 500.0)
    assert (at_once.length, at_once.below, at_once.above) == (None, None, 512)
    assert slo_crossing([], [], 500.0).length is None


def test_slo_effective_accuracy_counts_slow_and_failed_answers_as_abandoned() -> None:
    result = slo_effective_accuracy(0.8, [100.0, 499.0, 500.0, 501.0, None, 2000.0, 300.0, 50.0], 500.0)
    assert (result.n, result.answered) == (8, 5)
    assert result.effective_accuracy == pytest.approx(0.8 * 5 / 8) and result.abandoned_share == pytest.approx(3 / 8)
    assert slo_effective_accuracy(0.8, [], 500.0).effective_accuracy is None
    with pytest.raises(ValueError, match="> 0 ms"):
        slo_effective_accuracy(0.8, [1.0], 0.0)


def test_input_tokens_may_be_left_out_by_writers_that_do_not_sweep() -> None:
    sample = {
        "run_id": "r", "model_id": "m", "revision": "x", "eval_date": dt.date(2026, 1, 1), "scenario": "s",
        "load_type": "concurrency", "load": 1.0, "request_index": 0, "scheduled_s": 0.0, "sent_s": 0.0,
        "first_token_s": 0.1, "finished_s": 0.2, "prompt_tokens": 8, "output_tokens": 4, "itl_ms": [1.0],
        "ok": True, "error": None,
    }  # fmt: skip
    assert conform("latency_samples", [sample]).column("input_tokens").to_pylist() == [None]
    assert conform("latency_samples", [{**sample, "input_tokens": 512}]).column("input_tokens").to_pylist() == [512]
