"""Scenario files: the shipped ones load; bad ones fail with errors naming the file, the field and the problem."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from evals.errors import ConfigError
from evals.latency.scenario import ConcurrencyLevel, RateLevel, builtin_scenarios, load_scenario, parse_scenario


def _scenario(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "version": 2,
        "api": "completions",
        "prompts": {"source": "synthetic", "input_tokens": 16},
        "output": {"max_tokens": 8},
        "levels": [{"concurrency": 1}, {"rate": 4.5}],
        "slo": {"ttft_p95_ms": 500, "tpot_p99_ms": 50},
    }
    data.update(changes)
    return data


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_shipped_scenarios_load() -> None:
    assert {"smoke", "chat-slo"} <= set(builtin_scenarios())
    smoke, _ = load_scenario("smoke")
    assert smoke.name == "smoke" and smoke.api == "completions"
    chat, _ = load_scenario("chat-slo")
    assert chat.api == "chat" and chat.output.max_tokens == 128
    concurrencies = [lv.concurrency for lv in chat.levels if isinstance(lv, ConcurrencyLevel)]
    assert concurrencies[0] == 1 and concurrencies[-1] == 64
    assert any(isinstance(lv, RateLevel) for lv in chat.levels)
    assert chat.slo == {"ttft_p95_ms": 500, "tpot_p95_ms": 50}


def test_levels_and_defaults(tmp_path: Path) -> None:
    scenario, path = load_scenario(_write(tmp_path, _scenario()))
    assert path == tmp_path / "scenario.yaml"
    assert scenario.version == "2"
    closed, open_ = scenario.levels
    assert isinstance(closed, ConcurrencyLevel) and (closed.load_type, closed.load) == ("concurrency", 1.0)
    assert isinstance(open_, RateLevel) and (open_.load_type, open_.load, open_.arrival) == ("rate", 4.5, "poisson")
    assert scenario.level_requests(closed) == 64
    assert scenario.prompts.input_tokens.distribution == "fixed"  # type: ignore[union-attr]


def test_config_hash_follows_content() -> None:
    one = parse_scenario(_scenario())
    assert one.config_hash() == parse_scenario(_scenario()).config_hash()
    assert one.config_hash() != parse_scenario(_scenario(output={"max_tokens": 9})).config_hash()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"levels": [{"concurrency": -2}]}, "levels[0].concurrency: Input should be greater than 0 (got -2)"),
        ({"levels": [{"rate": 0}]}, "levels[0].rate: Input should be greater than 0"),
        ({"levels": [{"concurrency": 1, "rate": 2}]}, "levels[0]: a level needs exactly one of 'concurrency'"),
        ({"levels": [{"requests": 3}]}, "levels[0]: a level needs exactly one of"),
        ({"levels": []}, "levels: List should have at least 1 item"),
        ({"levels": [{"concurrency": 1, "requests": 4, "duration_s": 2}]}, "requests or duration_s"),
        ({"levels": [{"rate": 1, "arrival": "bursty"}]}, "levels[0].arrival: Input should be 'poisson' or"),
        ({"api": "embeddings"}, "api: Input should be 'completions' or 'chat' (got 'embeddings')"),
        ({"slo": {"latency_p95_ms": 100}}, "unknown SLO metric 'latency_p95_ms'"),
        ({"slo": {"ttft_p97_ms": 100}}, "unknown SLO metric 'ttft_p97_ms'"),
        ({"slo": {"ttft_p95_ms": -1}}, "must be > 0 ms"),
        ({"concurency": 3}, "concurency: unknown field"),
        ({"prompts": {"source": "csv"}}, "prompts: Input tag 'csv' found using 'source' does not match"),
        (
            {"prompts": {"source": "synthetic", "input_tokens": {"distribution": "uniform", "mean": 10, "min": 20}}},
            "prompts.input_tokens: mean (10) must lie within min..max (20..20)",
        ),
        ({"prompts": {"source": "synthetic", "input_tokens": {"mean": 10, "min": 5}}}, "a fixed length takes only"),
        (
            {"prompts": {"source": "synthetic", "input_tokens": {"distribution": "normal", "mean": 10}}},
            "a normal distribution needs stddev",
        ),
        ({"output": {"max_tokens": 0}}, "output.max_tokens: Input should be greater than 0"),
        ({"name": "bad name!"}, "name: String should match pattern"),
    ],
)
def test_bad_scenarios_are_refused_clearly(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    path = _write(tmp_path, _scenario(**changes))
    with pytest.raises(ConfigError) as error:
        load_scenario(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_missing_field_is_named(tmp_path: Path) -> None:
    data = _scenario()
    del data["output"]
    with pytest.raises(ConfigError, match=r"output: Field required"):
        load_scenario(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("text", "message"), [("name: [unclosed", "not valid YAML"), ("- a\n- b\n", "expected a mapping")]
)
def test_unreadable_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_scenario(_write(tmp_path, text))


def test_unknown_names_and_missing_files() -> None:
    with pytest.raises(ConfigError, match=r"unknown scenario 'nope'; known scenarios: .*chat-slo.*smoke"):
        load_scenario("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_scenario("/no/such/scenario.yaml")


def test_extra_scenario_folder_is_searched_first(tmp_path: Path) -> None:
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(_scenario(name="smoke", version="local")))
    scenario, _ = load_scenario("smoke", tmp_path)
    assert scenario.version == "local"


def test_prompts_needed_counts_warmup_and_every_level() -> None:
    scenario = parse_scenario(
        _scenario(levels=[{"concurrency": 8, "requests": 10}, {"rate": 2, "duration_s": 5}], warmup_requests=2)
    )
    # concurrency 8: warm-up raised to 8, then 10; rate 2 for 5 s: warm-up 16, then ~12 with margin.
    assert scenario.prompts_needed() == 8 + 10 + 16 + 13


def test_trials_repeat_every_level_and_a_single_trial_hashes_as_before() -> None:
    once = parse_scenario(_scenario(levels=[{"concurrency": 8, "requests": 10}], warmup_requests=2))
    thrice = parse_scenario(_scenario(levels=[{"concurrency": 8, "requests": 10}], warmup_requests=2, trials=3))
    assert once.trials == 1 and thrice.prompts_needed() == 3 * once.prompts_needed() == 3 * (8 + 10)
    # A stored run's hash was computed before the field existed: trials 1 must hash what that dump hashed.
    dumped = once.model_dump(mode="json")
    del dumped["trials"]
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    assert once.config_hash() == hashlib.sha256(canonical.encode()).hexdigest()[:16] != thrice.config_hash()
    with pytest.raises(ConfigError, match="trials"):
        parse_scenario(_scenario(trials=0))
