"""The guardrails suites: the offline one's tasks and data through lm-eval's task loader, bad data, Hub task names."""

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from evals.accuracy.suites import TASKS_DIR, load_suite, output_types, task_manager, validate_tasks
from evals.accuracy.task_data import read_records
from evals.errors import ConfigError

LEAVES = {
    "guardrails_hhh_harmless": 3,
    "guardrails_hhh_honest": 3,
    "guardrails_hhh_helpful": 3,
    "guardrails_hhh_other": 3,
    "guardrails_bbq_ambig": 18,
    "guardrails_bbq_disambig": 18,
    "guardrails_refusal_harmful": 50,
    "guardrails_refusal_benign": 50,
}


def _leaf_tasks(task_dict: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in task_dict.items():
        if isinstance(value, dict):
            out |= _leaf_tasks(value)
        else:
            out[getattr(key, "group_name", key)] = value
    return out


def _build(include: Path, names: list[str]) -> dict[str, Any]:
    from lm_eval.tasks import TaskManager, get_task_dict

    return _leaf_tasks(get_task_dict(names, TaskManager(include_path=str(include), include_defaults=False)))


def test_guardrails_suite_is_offline_and_chat_shaped() -> None:
    suite = load_suite("guardrails")
    assert suite.ref == "guardrails@1.0.0"
    assert suite.include_dir() == (TASKS_DIR / "guardrails").resolve() and not suite.include_defaults
    assert suite.apply_chat_template
    validate_tasks(suite)
    assert output_types(suite) == {
        "guardrails_hhh": {"multiple_choice"},
        "guardrails_bbq": {"multiple_choice"},
        "guardrails_refusal_harmful": {"generate_until"},
        "guardrails_refusal_benign": {"generate_until"},
    }


def test_every_task_loads_its_shipped_data_through_lm_eval() -> None:
    suite = load_suite("guardrails")
    tasks = _build(TASKS_DIR / "guardrails", list(suite.tasks))
    assert {name: len(task.eval_docs) for name, task in tasks.items()} == LEAVES
    harmful, benign = tasks["guardrails_refusal_harmful"], tasks["guardrails_refusal_benign"]
    assert harmful.higher_is_better() == {"refusal_rate": True}
    assert benign.higher_is_better() == {"over_refusal_rate": False}
    assert harmful.process_results(harmful.eval_docs[0], ["I can't help with that."]) == {"refusal_rate": 1}
    assert benign.process_results(benign.eval_docs[0], ["Run kill -9 PID."]) == {"over_refusal_rate": 0}
    # XSTest's design: each harmful prompt has its benign look-alike, in the same category.
    pairs = {d["id"]: d for d in list(harmful.eval_docs) + list(benign.eval_docs)}
    assert all(
        pairs[d["pair"]]["pair"] == d["id"] and pairs[d["pair"]]["category"] == d["category"] for d in pairs.values()
    )
    hhh = tasks["guardrails_hhh_harmless"]
    assert hhh.doc_to_choice(hhh.eval_docs[0]) == hhh.eval_docs[0]["choices"]


@pytest.fixture
def task_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "guardrails"
    shutil.copytree(TASKS_DIR / "guardrails", copy)
    return copy


def test_missing_data_file_names_the_file_and_the_yaml_field(task_copy: Path) -> None:
    missing = task_copy / "data" / "bigbench" / "hhh_other.test.jsonl"
    missing.unlink()
    with pytest.raises(ConfigError) as err:
        _build(task_copy, ["guardrails_hhh_other"])
    assert str(missing) in str(err.value) and "dataset_kwargs.data_files.test" in str(err.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", r"line 2: not valid JSON"),
        (json.dumps({"input": "q", "choices": ["a", "b"]}), r"line 2: field 'label' is missing \(expected int\)"),
        (
            json.dumps({"input": "q", "choices": "ab", "label": 0}),
            r"line 2: field 'choices' is str, expected list\[str\]",
        ),
        (json.dumps({"input": "q", "choices": ["a", "b"], "label": 2}), r"line 2: field 'label' is 2, not an index"),
        (json.dumps({"input": " ", "choices": ["a"], "label": 0}), r"line 2: field 'input' is empty"),
        (json.dumps({"input": "q", "choices": ["a"], "label": True}), r"line 2: field 'label' is bool, expected int"),
    ],
)
def test_malformed_record_names_the_file_line_and_field(task_copy: Path, line: str, expected: str) -> None:
    path = task_copy / "data" / "bigbench" / "hhh_other.test.jsonl"
    first = path.read_text().splitlines()[0]
    path.write_text(f"{first}\n{line}\n")
    with pytest.raises(ConfigError, match=expected) as err:
        _build(task_copy, ["guardrails_hhh_other"])
    assert str(path) in str(err.value)


def test_refusal_prompt_without_its_prompt_field_is_refused(task_copy: Path) -> None:
    path = task_copy / "data" / "refusal" / "benign.test.jsonl"
    record = json.loads(path.read_text().splitlines()[0])
    del record["prompt"]
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(ConfigError, match=r"benign.test.jsonl line 1: field 'prompt' is missing"):
        _build(task_copy, ["guardrails_refusal_benign"])


def test_empty_file_and_unknown_field_type_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=r"empty.jsonl holds no records"):
        read_records(empty, {"input": "str"})
    with pytest.raises(ConfigError, match=r"dataset_kwargs.fields: unknown type\(s\) text"):
        read_records(empty, {"input": "text"})


def test_suite_pointing_at_a_missing_task_folder_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nversion: '1'\ntasks: [guardrails_hhh]\ninclude_path: guardrailz\n")
    with pytest.raises(ConfigError, match=r"mine@1: include_path 'guardrailz' is not a folder"):
        load_suite(path).include_dir()


@pytest.mark.slow
def test_guardrails_hub_task_names_exist_in_lm_eval_registry() -> None:
    suite = load_suite("guardrails-hub")
    assert suite.include_defaults and suite.include_path is None
    manager = task_manager(suite)
    validate_tasks(suite, manager)  # raises on any unknown name
    assert {"truthfulqa_mc2", "bbq", "crows_pairs_english", "toxigen", "ethics_cm"} <= set(suite.tasks)
    types = output_types(suite, manager)
    assert types["truthfulqa_mc1"] == {"multiple_choice"}
    assert set().union(*types.values()) <= {"multiple_choice", "generate_until", "unknown"}
