import datetime as dt
import math

import pytest

from evals.accuracy.normalize import as_float, split_metric_key, to_rows
from evals.conformance import conform

RESULTS = {
    "results": {
        "grp": {
            "alias": "grp",
            "acc,none": 0.5,
            "acc_stderr,none": 0.1,
            "sample_len": 30,
            "sample_count": {"acc,none": 30},
        },
        "sub_a": {"alias": " - sub_a", "acc,none": 0.4, "acc_stderr,none": "N/A", "sample_len": 10},
        "sub_b": {"acc,none": 0.55, "acc_stderr,none": float("nan"), "sample_len": 20},
        "gen": {
            "exact_match,strict-match": 0.25,
            "exact_match_stderr,strict-match": 0.05,
            "exact_match,flexible-extract": 0.3,
            "exact_match_stderr,flexible-extract": 0.06,
            "bleu,none": float("nan"),
        },
    },
    "groups": {"grp": {"acc,none": 0.5, "acc_stderr,none": 0.1}},
    "group_subtasks": {"grp": ["sub_a", "sub_b"], "gen": []},
    "versions": {"grp": "1.0", "sub_a": 2, "sub_b": 1.0, "gen": 3},
    "n-shot": {"grp": 0, "sub_a": 0, "sub_b": 0, "gen": 5},
    "higher_is_better": {
        "grp": {"acc": True},
        "sub_a": {"acc": True},
        "sub_b": {"acc": True},
        "gen": {"exact_match": True},
    },
    "n-samples": {
        "sub_a": {"original": 12, "effective": 10},
        "sub_b": {"original": 20, "effective": 20},
        "gen": {"original": 40, "effective": 40},
    },
}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("acc,none", ("acc", "none")),
        ("exact_match,strict-match", ("exact_match", "strict-match")),
        ("acc", ("acc", "none")),
        ("f1,a,b", ("f1", "a,b")),
    ],
)
def test_split_metric_key(key: str, expected: tuple[str, str]) -> None:
    assert split_metric_key(key) == expected


@pytest.mark.parametrize("raw", ["N/A", float("nan"), float("inf"), None, True, "x"])
def test_unknown_stderr_becomes_none(raw: object) -> None:
    assert as_float(raw) is None


def test_rows_keep_groups_and_subtasks_with_their_fields() -> None:
    rows = {(r["task"], r["metric"], r["filter"]): r for r in to_rows(RESULTS, model_id="m", revision="r", suite="s")}
    assert set(rows) == {
        ("grp", "acc", "none"),
        ("sub_a", "acc", "none"),
        ("sub_b", "acc", "none"),
        ("gen", "exact_match", "strict-match"),
        ("gen", "exact_match", "flexible-extract"),
    }
    group, sub_a, sub_b = rows["grp", "acc", "none"], rows["sub_a", "acc", "none"], rows["sub_b", "acc", "none"]
    assert (group["task_group"], sub_a["task_group"]) == (None, "grp")
    assert group["n_samples"] == 30 and sub_a["n_samples"] == 10  # effective count, not the original 12
    assert sub_a["stderr"] is None and sub_b["stderr"] is None and group["stderr"] == 0.1
    assert (sub_a["task_version"], sub_b["task_version"], group["task_version"]) == ("2", "1.0", "1.0")
    strict = rows["gen", "exact_match", "strict-match"]
    assert (strict["value"], strict["stderr"], strict["num_fewshot"], strict["higher_is_better"]) == (
        0.25,
        0.05,
        5,
        True,
    )


def test_rows_fit_the_accuracy_schema() -> None:
    rows = to_rows(RESULTS, model_id="m", revision="r", suite="s")
    when = dt.date(2026, 11, 29)
    table = conform("accuracy", [row | {"run_id": "x", "eval_date": when} for row in rows])
    assert table.num_rows == len(rows)
    assert not any(isinstance(v, float) and math.isnan(v) for v in table.column("value").to_pylist())
