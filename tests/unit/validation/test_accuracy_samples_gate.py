"""The gate on accuracy_samples: rows per (task, metric, filter) = lm-eval's count, mean = aggregate, unique, finite."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pytest
from factories import accuracy_rows, run_record
from unit.validation.validation_cases import quiet_settings

from evals.validation import Expected, validate

N = 100  # documents per task (factories.accuracy_rows reports n_samples=100)
Tables = dict[str, list[dict[str, Any]]]


def _run() -> tuple[Any, Tables, Expected]:
    record = run_record(scenario=None, scenario_version=None)
    accuracy = accuracy_rows(record, {"arc_easy": 0.61, "gsm8k": 0.12})
    samples = []
    for row in accuracy:
        right = round(row["value"] * N)
        for doc in range(N):
            samples.append(
                {
                    "model_id": record.model_id,
                    "revision": record.revision,
                    "suite": record.suite,
                    "task": row["task"],
                    "doc_id": doc,
                    "doc_hash": f"{row['task']}-{doc}",
                    "prompt_hash": None,
                    "target_hash": None,
                    "metric": row["metric"],
                    "filter": row["filter"],
                    "aggregation": "mean",
                    "value": 1.0 if doc < right else 0.0,
                    "response": "a",
                    "target": "a",
                }
            )
    expected = Expected(
        n_samples={"arc_easy": N, "gsm8k": N},
        samples={("arc_easy", "acc", "none"): N, ("gsm8k", "exact_match", "strict-match"): N},
    )
    return record, {"accuracy": accuracy, "accuracy_samples": samples}, expected


def _check(tables: Tables, expected: Expected) -> list[str]:
    record, _, _ = _run()
    report, _ = validate(record, tables, expected=expected, settings=quiet_settings())
    return [f.describe() for f in report.failures]


def test_a_valid_run_passes() -> None:
    _, tables, expected = _run()
    assert _check(tables, expected) == []


def _drop_row(tables: Tables) -> None:
    tables["accuracy_samples"].pop()


def _shift_value(tables: Tables) -> None:
    tables["accuracy_samples"][0]["value"] = 0.0  # mean now 0.60 != stored 0.61


def _tiny_drift(tables: Tables) -> None:
    tables["accuracy"][0]["value"] += 1e-9  # beyond 1e-12


def _duplicate(tables: Tables) -> None:
    tables["accuracy_samples"][1] = {**tables["accuracy_samples"][0]}
    tables["accuracy_samples"][1]["value"] = 1.0


def _infinite(tables: Tables) -> None:
    tables["accuracy_samples"][0]["value"] = math.inf


def _unknown_key(tables: Tables) -> None:
    for row in tables["accuracy_samples"][:N]:
        row["filter"] = "other"


CASES: dict[str, tuple[Callable[[Tables], None], str]] = {
    "missing_row": (_drop_row, "rows per (task, metric, filter) == lm-eval's sample count"),
    "mean_off": (_shift_value, "mean of value == the stored aggregate"),
    "aggregate_off_by_1e-9": (_tiny_drift, "mean of value == the stored aggregate"),
    "duplicate": (_duplicate, "no duplicated rows"),
    "infinite": (_infinite, "non-finite"),
    "key_without_aggregate": (_unknown_key, "every (task, metric, filter) has its accuracy row"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_corruption_is_caught(case: str) -> None:
    corrupt, reason = CASES[case]
    _, tables, expected = _run()
    corrupt(tables)
    failures = _check(tables, expected)
    assert any(reason in f for f in failures), failures


def test_a_run_that_lost_its_samples_is_caught() -> None:
    _, tables, expected = _run()
    del tables["accuracy_samples"]
    assert any("accuracy_samples has rows" in f for f in _check(tables, expected))
    assert _check(tables, dataclasses.replace(expected, samples={})) == []  # nothing logged, nothing expected
