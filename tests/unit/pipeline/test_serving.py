"""The serving configuration: the shipped example loads; bad files are ConfigErrors naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.errors import ConfigError
from evals.pipeline.serving import load_serving

GOOD = """
champion: hf:org/name@0123456789abcdef0123456789abcdef01234567
traffic: {tokens_per_day: 5000000}
policy: {name: strict, version: 2, non_inferiority: {smoke: 1.5}}
"""


def test_the_shipped_example_loads() -> None:
    config = load_serving(Path(__file__).parents[3] / "evals" / "config" / "serving.yaml")
    assert config is not None
    assert config.champion == "package:smollm2"
    assert config.policy.margin_points("smoke") == 2.0
    assert config.policy.margin_points("nightly") == 1.0  # the "*" margin


def test_no_config_means_no_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    from evals.pipeline.decide import decide_step

    monkeypatch.delenv("EVALS_SERVING", raising=False)
    assert load_serving() is None
    assert decide_step([], {"logical_date": "2026-11-03T02:00:00+00:00"}) == {
        "configured": False,
        "decisions": [],
        "promote": [],
    }


def test_policy_from_its_own_file(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("name: shared\nversion: 7\nnon_inferiority: {'*': 1.0}\n")
    serving = tmp_path / "serving.yaml"
    serving.write_text("champion: package:smollm2\ntraffic: {requests_per_s: 3}\npolicy: policy.yaml\n")
    config = load_serving(serving)
    assert config is not None and (config.policy.name, config.policy.version) == ("shared", "7")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("champion: package:smollm2\nsurprise: 1\n", "surprise: Extra inputs are not permitted (unknown field)"),
        ("champion: package:smollm2\n", "policy.non_inferiority: Value error, margin of suite 'smoke' is negative"),
        ("champion: package:smollm2\n", "cost.prices.endpoint:gpt.usd_per_1m_output_tokens"),
        ("champion: package:smollm2\n", "traffic: Value error, give exactly one"),
        ("champion: 'not a ref'\n", "champion"),
    ],
)
def test_bad_files_name_the_file_and_the_field(tmp_path: Path, change: str, field: str) -> None:
    serving = tmp_path / "serving.yaml"
    policy = "policy: {name: p, version: 1, non_inferiority: {smoke: 1.0}}\n"
    traffic = "traffic: {requests_per_s: 1}\n"
    extra = ""
    if "negative" in field:
        policy = "policy: {name: p, version: 1, non_inferiority: {smoke: -1.0}}\n"
    if "prices" in field:
        extra = "cost: {prices: {'endpoint:gpt': {usd_per_1m_input_tokens: 0.1}}}\n"
    if "exactly one" in field:
        traffic = "traffic: {requests_per_s: 1, tokens_per_day: 10}\n"
    serving.write_text(change + traffic + policy + extra)
    with pytest.raises(ConfigError) as info:
        load_serving(serving)
    message = str(info.value)
    assert str(serving) in message
    assert field.replace("Value error, ", "").split(":")[0] in message
    if "prices" in field:
        assert "missing price usd_per_1m_output_tokens" in message
