"""validate_and_write: every failure kind is quarantined with a readable reason; valid runs are published."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from unit.validation.validation_cases import EXPECTED, valid_run, warehouse_at

from evals.analysis.leaderboard import connect
from evals.errors import ValidationFailed
from evals.validation import validate_and_write
from evals.warehouse import RunRecord, Warehouse
from evals.warehouse.keys import validation_key as validation_path

Tables = dict[str, list[dict[str, Any]]]


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return warehouse_at(f"file://{tmp_path / 'warehouse'}")


def published_counts(wh: Warehouse, run_id: str) -> dict[str, int]:
    con = connect(wh)
    return {
        table: con.execute(f"select count(*) from {table} where run_id = ?", [run_id]).fetchone()[0]  # type: ignore[index]
        for table in ("runs", "accuracy", "latency", "latency_samples")
    }


def _set(table: str, index: int, **values: Any) -> Callable[[Tables], None]:
    def corrupt(tables: Tables) -> None:
        tables[table][index].update(values)

    return corrupt


def _all_failed(tables: Tables) -> None:
    row = tables["latency"][1]
    row.update(n_failed=row["n_requests"], output_tokens_per_s=0.0, requests_per_s=0.0, goodput=0.0)
    for column in [c for c in row if c.endswith("_ms")]:
        row[column] = None
    for sample in tables["latency_samples"]:
        if sample["load"] == row["load"]:
            sample.update(ok=False, first_token_s=None, output_tokens=0, itl_ms=[], error="timeout")


def _p95_below_p50(tables: Tables) -> None:
    row = tables["latency"][0]
    row["ttft_p95_ms"] = row["ttft_p50_ms"] / 2


FAILURE_KINDS: dict[str, tuple[Callable[[Tables], None], str]] = {
    "nan_latency": (_set("latency", 0, e2e_p95_ms=math.nan), "e2e_p95_ms is present (not null/NaN)"),
    "inf_latency": (_set("latency", 1, tpot_p99_ms=math.inf), "tpot_p99_ms is finite"),
    "inf_stderr": (_set("accuracy", 0, stderr=math.inf), "stderr is >= 0 and finite"),
    "acc_above_one": (_set("accuracy", 0, value=1.3), "value is in [0, 1]"),
    "negative_stderr": (_set("accuracy", 1, stderr=-0.02), "stderr is >= 0"),
    "missing_metric_row": (lambda t: t["accuracy"].pop(1), "missing: gsm8k/exact_match/strict-match"),
    "duplicated_accuracy_row": (lambda t: t["accuracy"].append(dict(t["accuracy"][0])), "no duplicated rows"),
    "duplicated_sample_row": (
        lambda t: t["latency_samples"].append(dict(t["latency_samples"][3])),
        "one row per request",
    ),
    "p95_below_p50": (_p95_below_p50, "ttft percentiles ordered"),
    "all_requests_failed": (_all_failed, "failure rate n_failed/n_requests <= 0.05"),
    "samples_count_mismatch": (lambda t: t["latency_samples"].pop(), "latency_samples rows of the level == n_requests"),
    "wrong_n_samples": (_set("accuracy", 0, n_samples=50), "n_samples equals what the suite asked for"),
    "timestamps_unordered": (_set("latency_samples", 2, first_token_s=-1.0), "sent_s <= first_token_s"),
    # A level that says it ran 2 trials while its samples name none (or one): the CI would rest on labels that lie.
    "trials_unlabelled": (_set("latency", 0, n_trials=2), "latency_samples come from n_trials trials"),
}


def assert_quarantined(wh: Warehouse, record: RunRecord, reason: str) -> dict[str, Any]:
    """Not published anywhere, the runs row and the data kept in quarantine, the reason stored and readable."""
    assert published_counts(wh, record.run_id) == {"runs": 0, "accuracy": 0, "latency": 0, "latency_samples": 0}
    assert wh.find_run(record.run_id, area="published") is None
    kept = wh.find_run(record.run_id, area="quarantine")
    assert kept is not None and kept.status == "quarantined"
    assert kept.error is not None and reason in kept.error
    con = connect(wh)
    assert con.execute("select status from all_runs where run_id = ?", [record.run_id]).fetchall() == [("quarantined",)]
    result = wh.storage.read_json(validation_path(record.run_id))
    assert result["success"] is False and result["run_id"] == record.run_id
    assert reason in result["summary"] and result["failures"]
    return result


@pytest.mark.parametrize("kind", sorted(FAILURE_KINDS))
def test_failure_kind_is_quarantined_with_a_readable_reason(wh: Warehouse, kind: str) -> None:
    corrupt, reason = FAILURE_KINDS[kind]
    record, tables = valid_run()
    corrupt(tables)
    with pytest.raises(ValidationFailed, match="failed validation") as failed:
        validate_and_write(record, tables, expected=EXPECTED, warehouse=wh)
    assert reason in str(failed.value)
    assert_quarantined(wh, record, reason)
    kept = wh.find_run(record.run_id, area="quarantine")
    assert kept is not None
    for table, rows in tables.items():
        data = wh.read_run_table(table, kept, area="quarantine")
        assert data is not None and data.num_rows == len(rows), table


def test_offending_rows_are_kept_in_the_result(wh: Warehouse) -> None:
    record, tables = valid_run()
    tables["latency"][1]["ttft_p99_ms"] = 1.0  # below p95
    with pytest.raises(ValidationFailed):
        validate_and_write(record, tables, expected=EXPECTED, warehouse=wh)
    result = wh.storage.read_json(validation_path(record.run_id))
    [failure] = [
        f for f in result["failures"] if f["column"] == "ttft_p99_ms" and f["check"].startswith("expect_column_pair")
    ]
    assert failure["unexpected_count"] == 1
    assert failure["rows"] == [
        {"ttft_p99_ms": 1.0, "ttft_p95_ms": pytest.approx(120 * 1.8), "check_level": "concurrency=8"}
    ]
    assert result["gx_results"]["latency"]["success"] is False
    assert result["expected"]["n_samples"] == {"arc_easy": 100, "gsm8k": 100}


def test_a_metric_dropped_for_one_filter_is_caught_when_another_filter_survives(wh: Warehouse) -> None:
    # lm-eval reported exact_match under two filters; normalization kept only strict-match (the other was NaN).
    record, tables = valid_run()
    expected = replace(
        EXPECTED, metrics={**EXPECTED.metrics, "gsm8k": ["exact_match,strict-match", "exact_match,flexible-extract"]}
    )
    with pytest.raises(ValidationFailed, match="missing: gsm8k/exact_match/flexible-extract"):
        validate_and_write(record, tables, expected=expected, warehouse=wh)
    assert_quarantined(wh, record, "gsm8k/exact_match/flexible-extract")


def test_malformed_sha_is_quarantined(wh: Warehouse) -> None:
    record, tables = valid_run(revision="main")
    with pytest.raises(ValidationFailed, match="revision is a full commit SHA"):
        validate_and_write(record, tables, expected=EXPECTED, warehouse=wh)
    assert_quarantined(wh, record, "revision is a full commit SHA")


def test_schema_violation_is_quarantined_with_its_raw_rows(wh: Warehouse) -> None:
    record, tables = valid_run()
    tables["accuracy"][0]["value"] = math.nan  # a required float: the schema refuses it before GX runs
    with pytest.raises(ValidationFailed, match="accuracy: column 'value': 1 null value"):
        validate_and_write(record, tables, expected=EXPECTED, warehouse=wh)
    result = assert_quarantined(wh, record, "column 'value'")
    assert result["kind"] == "schema_violation"
    assert [row["value"] for row in result["raw_rows"]["accuracy"]] == ["NaN", 0.12]
    kept = wh.find_run(record.run_id, area="quarantine")
    assert kept is not None
    # Tables that did conform are kept as Parquet; the one that did not lives only in the JSON.
    assert wh.read_run_table("accuracy", kept, area="quarantine") is None
    assert wh.read_run_table("latency", kept, area="quarantine") is not None


def test_missing_table_the_suite_asked_for_is_quarantined(wh: Warehouse) -> None:
    record, tables = valid_run()
    del tables["accuracy"]
    with pytest.raises(ValidationFailed, match="accuracy has rows"):
        validate_and_write(record, tables, expected=EXPECTED, warehouse=wh)


def test_valid_run_is_published_and_on_the_leaderboard(wh: Warehouse) -> None:
    record, tables = valid_run()
    written = validate_and_write(record, tables, expected=EXPECTED, warehouse=wh)
    assert written.status == "published" and written.error is None
    assert published_counts(wh, record.run_id) == {"runs": 1, "accuracy": 2, "latency": 2, "latency_samples": 40}
    board = connect(wh).execute("select model_id, revision, accuracy from leaderboard").fetchall()
    assert board == [(record.model_id, record.revision, pytest.approx((0.61 + 0.12) / 2))]
    assert not wh.storage.exists(validation_path(record.run_id))


def test_a_passing_rerun_replaces_the_quarantined_attempt(wh: Warehouse) -> None:
    record, tables = valid_run()
    bad = {name: [dict(row) for row in rows] for name, rows in tables.items()}
    bad["accuracy"][0]["value"] = 1.3
    with pytest.raises(ValidationFailed):
        validate_and_write(record, bad, expected=EXPECTED, warehouse=wh)
    validate_and_write(record, tables, expected=EXPECTED, warehouse=wh)
    assert published_counts(wh, record.run_id)["accuracy"] == 2
    assert wh.find_run(record.run_id, area="quarantine") is None
    assert not wh.storage.exists(validation_path(record.run_id))
