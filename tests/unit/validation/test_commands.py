"""``evals quarantine list|show|revalidate`` (and the old ``evals validate``): re-validation publishes a run once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner
from unit.validation.validation_cases import EXPECTED, valid_run, warehouse_at

from evals.cli import app
from evals.errors import ValidationFailed
from evals.validation import validate_and_write
from evals.warehouse import RunRecord, Warehouse
from evals.warehouse.keys import validation_key as validation_path
from evals.warehouse.views import connect


@pytest.fixture
def wh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    uri = f"file://{tmp_path / 'warehouse'}"
    monkeypatch.setenv("EVALS_WAREHOUSE", uri)
    monkeypatch.setenv("EVALS_VALIDATION_DATA_DOCS", "false")
    return warehouse_at(uri)


def quarantine_flaky_run(wh: Warehouse) -> RunRecord:
    """A run whose heavy load level lost 2 of 20 requests: over the default 5 % failure-rate limit."""
    record, tables = valid_run()
    tables["latency"][1]["n_failed"] = 2
    for sample in [s for s in tables["latency_samples"] if s["load"] == 8.0][:2]:
        sample.update(ok=False, error="timeout", first_token_s=None)
    with pytest.raises(ValidationFailed, match="failure rate"):
        validate_and_write(record, tables, expected=EXPECTED, warehouse=wh)
    return record


def counts(wh: Warehouse, run_id: str) -> tuple[int, ...]:
    con = connect(wh)
    return tuple(
        con.execute(f"select count(*) from {table} where run_id = ?", [run_id]).fetchone()[0]  # type: ignore[index]
        for table in ("runs", "accuracy", "latency", "latency_samples", "quarantined_runs")
    )


def test_revalidation_after_a_threshold_change_publishes_exactly_once(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = quarantine_flaky_run(wh)
    runner = CliRunner()

    listed = runner.invoke(app, ["quarantine", "list"])
    assert listed.exit_code == 0, listed.output
    assert record.run_id in listed.output and "failure rate n_failed/n_requests <= 0.05" in listed.output

    still = runner.invoke(app, ["quarantine", "revalidate", "--run", record.run_id])
    assert still.exit_code == 1 and "still quarantined" in still.output
    assert counts(wh, record.run_id) == (0, 0, 0, 0, 1)

    monkeypatch.setenv("EVALS_VALIDATION_MAX_FAILURE_RATE", "0.2")
    first = runner.invoke(app, ["quarantine", "revalidate", "--run", record.run_id])
    assert first.exit_code == 0, first.output
    assert f"{record.run_id} {record.model_id}" in first.output and first.output.strip().endswith("published")
    second = runner.invoke(app, ["validate", "--run", record.run_id])  # the old name, kept for scripts
    assert second.exit_code == 0 and "already published" in second.stdout
    assert "note: 'evals validate' is now 'evals quarantine revalidate'" in second.stderr

    assert counts(wh, record.run_id) == (1, 2, 2, 40, 0)
    published = wh.find_run(record.run_id, area="published")
    assert published is not None and published.status == "published" and published.error is None
    assert not wh.storage.exists(validation_path(record.run_id))
    assert runner.invoke(app, ["quarantine", "list"]).output.strip() == "no quarantined runs"


def test_quarantine_show_prints_the_stored_result(wh: Warehouse) -> None:
    record = quarantine_flaky_run(wh)
    shown = CliRunner().invoke(app, ["quarantine", "show", record.run_id])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    [failure] = report["failures"]
    assert failure["column"] == "check_failure_rate"
    assert failure["rows"] == [{"check_failure_rate": 0.1, "check_level": "concurrency=8"}]
    assert report["thresholds"]["validation_max_failure_rate"] == 0.05


@pytest.mark.parametrize("command", [["quarantine", "revalidate"], ["validate"]])
def test_revalidate_unknown_run_exits_2(wh: Warehouse, command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--run", "0" * 32])
    assert result.exit_code == 2 and "no quarantined run" in result.output
