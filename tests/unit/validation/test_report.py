"""Failures read as sentences; the stored result is strict JSON; Expected survives its JSON round trip."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np

from evals.validation import Expected
from evals.validation.expected import level_key
from evals.validation.report import Failure, ValidationReport, json_safe


def test_json_safe_spells_non_finite_numbers_and_unwraps_numpy() -> None:
    value = {"a": [math.nan, math.inf, -math.inf], "b": np.float64(1.5), "c": np.int64(3), "d": dt.date(2026, 1, 2)}
    safe = json_safe(value)
    assert safe == {"a": ["NaN", "Infinity", "-Infinity"], "b": 1.5, "c": 3, "d": "2026-01-02"}
    json.dumps(safe, allow_nan=False)


def test_failure_describes_rows_and_missing_values() -> None:
    rows = Failure(
        "latency",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "ttft percentiles ordered",
        unexpected_count=1,
        element_count=2,
        rows=[{"check_level": "concurrency=8", "ttft_p95_ms": 9.0}],
    )
    assert (
        rows.describe()
        == "latency: ttft percentiles ordered [1 of 2 rows fail; e.g. level=concurrency=8, ttft_p95_ms=9.0]"
    )
    missing = Failure(
        "accuracy",
        "expect_column_distinct_values_to_contain_set",
        "every task has rows",
        observed={"missing": ["gsm8k", "arc"]},
    )
    assert missing.describe() == "accuracy: every task has rows [missing: gsm8k, arc]"


def test_summary_names_every_failure_and_stays_bounded() -> None:
    report = ValidationReport("r" * 32, "org/m", "a" * 40, Expected(), {})
    assert report.success and report.kind == "passed"
    report.failures = [Failure("accuracy", "schema", f"column 'value': problem {i} " + "x" * 200) for i in range(40)]
    summary = report.summary()
    assert summary.startswith(f"run {'r' * 32} (org/m@aaaaaaaaaaaa) failed validation, 40 check(s): 1) accuracy:")
    assert len(summary) <= 4000 and report.kind == "schema_violation"


def test_expected_round_trips_through_json() -> None:
    expected = Expected(n_samples={"arc": 10}, metrics={"arc": ["acc", "acc_norm"]}, requests={("rate", 2.5): 40})
    assert Expected.from_json(json.loads(json.dumps(expected.to_json()))) == expected
    assert expected.levels == {"rate=2.5": 40} and expected.tasks == ["arc"]
    assert level_key("concurrency", 8.0) == "concurrency=8"
    assert Expected.from_json(None) == Expected()
