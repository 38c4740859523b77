from pathlib import Path

import pytest

from evals.accuracy.suites import (
    available_suites,
    load_suite,
    output_types,
    parse_suite,
    task_manager,
    validate_tasks,
)
from evals.errors import ConfigError

SMOKE_TASKS = ["bigbench_mc", "bigbench_arithmetic_1d_add"]


def test_shipped_suites_parse() -> None:
    assert {"smoke", "nightly"} <= set(available_suites())
    smoke = load_suite("smoke")
    assert smoke.tasks == SMOKE_TASKS
    assert smoke.ref == "smoke@1.0.0"
    assert not smoke.include_defaults


def test_unknown_suite_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown suite 'smok'.*nightly, smoke"):
        load_suite("smok")


def test_suite_with_wrong_types_names_each_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nversion: 1\ntasks: bigbench_mc\nbatch_size: big\nlimit: -3\n")
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    message = str(err.value)
    for field in ("version", "tasks", "batch_size", "limit"):
        assert field in message
    assert str(path) in message


def test_suite_refuses_unknown_keys_and_duplicates() -> None:
    with pytest.raises(ConfigError, match="num_shots"):
        parse_suite("name: s\nversion: '1'\ntasks: [a]\nnum_shots: 5\n")
    with pytest.raises(ConfigError, match="listed twice: a"):
        parse_suite("name: s\nversion: '1'\ntasks: [a, b, a]\n")
    with pytest.raises(ConfigError, match="mapping"):
        parse_suite("- just a list\n")


def test_include_path_must_stay_inside_the_tasks_folder() -> None:
    suite = parse_suite("name: s\nversion: '1'\ntasks: [a]\ninclude_path: ../suites\n")
    with pytest.raises(ConfigError, match="include_path"):
        suite.include_dir()


def test_unknown_task_lists_the_known_ones() -> None:
    suite = load_suite("smoke").model_copy(update={"tasks": ["bigbench_mcq", "bigbench_mc"]})
    with pytest.raises(ConfigError) as err:
        validate_tasks(suite)
    message = str(err.value)
    assert "'bigbench_mcq' (did you mean: bigbench_mc" in message
    assert "known tasks:" in message and "bigbench_arithmetic_1d_add" in message


def test_smoke_output_types_come_from_the_yaml_index() -> None:
    suite = load_suite("smoke")
    assert output_types(suite) == {"bigbench_mc": {"multiple_choice"}, "bigbench_arithmetic_1d_add": {"generate_until"}}


def test_score_config_ignores_the_description_only() -> None:
    suite = load_suite("smoke")
    assert suite.model_copy(update={"description": "other"}).digest() == suite.digest()
    assert suite.model_copy(update={"num_fewshot": 1}).digest() != suite.digest()


@pytest.mark.slow
def test_nightly_task_names_exist_in_lm_eval_registry() -> None:
    suite = load_suite("nightly")
    manager = task_manager(suite)
    validate_tasks(suite, manager)  # raises on any unknown name
    types = output_types(suite, manager)
    assert types["arc_challenge"] == {"multiple_choice"}
    assert types["gsm8k"] == {"generate_until"}
    assert set().union(*types.values()) <= {"multiple_choice", "generate_until"}
