"""Prompts: synthetic ones hit their token lengths exactly and repeat with the seed; JSONL files are checked."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from evals.errors import ConfigError
from evals.latency.prompt_sets import scenario_prompts
from evals.latency.prompts import Prompt, load_tokenizer, sample_lengths, synthetic_prompts
from evals.latency.scenario import JsonlPrompts, SyntheticPrompts, TokenLength, parse_scenario


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    return load_tokenizer(tiny_model_dir)


def _spec(**tokens: object) -> SyntheticPrompts:
    return SyntheticPrompts.model_validate({"source": "synthetic", "input_tokens": tokens})


def test_fixed_lengths_are_exact_and_seeded(tokenizer) -> None:  # type: ignore[no-untyped-def]
    prompts = synthetic_prompts(_spec(mean=64), tokenizer, seed=1, count=20)
    assert len(prompts) == 20
    for prompt in prompts:
        assert prompt.text is not None
        assert len(tokenizer.encode(prompt.text, add_special_tokens=False)) == 64 == prompt.tokens
    assert synthetic_prompts(_spec(mean=64), tokenizer, seed=1, count=20) == prompts
    assert synthetic_prompts(_spec(mean=64), tokenizer, seed=2, count=20) != prompts
    assert len({p.text for p in prompts}) == 20  # distinct prompts: no prefix-cache hits between requests


def test_uniform_lengths_stay_in_bounds(tokenizer) -> None:  # type: ignore[no-untyped-def]
    prompts = synthetic_prompts(_spec(distribution="uniform", mean=30, min=20, max=40), tokenizer, seed=0, count=30)
    lengths = [p.tokens for p in prompts]
    assert all(length is not None and 20 <= length <= 40 for length in lengths)
    assert len(set(lengths)) > 5


def test_sample_lengths_distributions() -> None:
    rng = random.Random(0)
    normal = sample_lengths(TokenLength(distribution="normal", mean=100, stddev=30, min=60, max=140), 2000, rng)
    assert min(normal) >= 60 and max(normal) <= 140
    assert 95 < sum(normal) / len(normal) < 105
    assert sample_lengths(TokenLength(mean=7), 3, rng) == [7, 7, 7]


def test_synthetic_prompts_need_a_tokenizer() -> None:
    scenario = parse_scenario(
        {
            "name": "s",
            "version": 1,
            "api": "completions",
            "prompts": {"source": "synthetic", "input_tokens": 8},
            "output": {"max_tokens": 4},
            "levels": [{"concurrency": 1}],
        }
    )
    with pytest.raises(ConfigError, match="need the checkpoint's tokenizer"):
        scenario_prompts(scenario, Path("."), None)
    with pytest.raises(ConfigError, match="cannot load a tokenizer from /no/such/dir"):
        scenario_prompts(scenario, Path("."), "/no/such/dir")


def _jsonl_scenario(api: str, path: str) -> object:
    return parse_scenario(
        {
            "name": "s",
            "version": 1,
            "api": api,
            "prompts": {"source": "jsonl", "path": path},
            "output": {"max_tokens": 4},
            "levels": [{"concurrency": 1}],
        }
    )


def test_jsonl_prompts(tmp_path: Path) -> None:
    lines = [{"prompt": "a"}, {"messages": [{"role": "user", "content": "b"}]}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    prompts = scenario_prompts(_jsonl_scenario("chat", "p.jsonl"), tmp_path, None)  # type: ignore[arg-type]
    assert prompts == [Prompt(text="a"), Prompt(messages=({"role": "user", "content": "b"},))]
    limited = JsonlPrompts(source="jsonl", path=str(tmp_path / "p.jsonl"), limit=1)
    from evals.latency.prompts import jsonl_prompts

    assert jsonl_prompts(limited, Path("/elsewhere"), "chat") == [Prompt(text="a")]


@pytest.mark.parametrize(
    ("content", "api", "message"),
    [
        ('{"prompt": "a"}\nnot json\n', "completions", r"p\.jsonl:2: not JSON"),
        ('{"text": "a"}\n', "completions", r"p\.jsonl:1: expected an object with 'prompt'"),
        ('{"messages": [{"role": "user", "content": "b"}]}\n', "completions", "'messages' need the chat API"),
        ('{"messages": [{"content": "b"}]}\n', "chat", "every message needs 'role' and 'content'"),
        ("\n", "completions", "holds no prompts"),
    ],
)
def test_bad_jsonl_files(tmp_path: Path, content: str, api: str, message: str) -> None:
    (tmp_path / "p.jsonl").write_text(content)
    with pytest.raises(ConfigError, match=message):
        scenario_prompts(_jsonl_scenario(api, "p.jsonl"), tmp_path, None)  # type: ignore[arg-type]


def test_missing_jsonl_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        scenario_prompts(_jsonl_scenario("chat", "nope.jsonl"), tmp_path, None)  # type: ignore[arg-type]
