"""``evals compare``, ``evals report`` and ``evals export`` in-process (Typer's runner), on a file:// warehouse."""

import csv
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from analysis_history import publish_night
from typer.testing import CliRunner

from evals.cli import app
from evals.warehouse import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    uri = f"file://{tmp_path / 'wh'}"
    monkeypatch.setenv("EVALS_WAREHOUSE", uri)
    wh = Warehouse(uri)
    publish_night(wh, "org/a", 1, seed=1, n_requests=100)
    publish_night(wh, "org/a", 2, seed=2, ttft_scale=1.6, n_requests=300)
    publish_night(wh, "org/b", 2, seed=3, n_requests=300)
    return wh


def test_compare_prints_a_table_of_deltas_with_cis(warehouse: Warehouse) -> None:
    result = CliRunner().invoke(app, ["compare", "org/a", "org/b"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("org/a@") and " vs org/b@" in lines[0]
    assert lines[1].split() == ["metric", "A", "B", "delta", "CI", "method", "MDE", "flips+/-", "verdict"]
    ttft = next(line for line in lines if line.startswith("latency:ttft_p95_ms@concurrency=4"))
    assert ttft.endswith("!! regression") and "[" in ttft and " bootstrap " in ttft
    # No samples in these runs: accuracy falls back to unpaired, and says what the suite can detect.
    assert " unpaired " in next(line for line in lines if line.startswith("accuracy:headline"))
    assert lines[-2].startswith("this suite detects ±") and "points of headline accuracy (unpaired" in lines[-2]
    assert "95% two-sided" in lines[-1]


def test_leaderboard_ranks_per_suite_and_scenario(warehouse: Warehouse) -> None:
    result = CliRunner().invoke(app, ["leaderboard", "--rank-by", "capacity", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    rows = json.loads(result.output)
    assert sorted(r["model_id"] for r in rows) == ["org/a", "org/b"]
    assert all(r["capacity"] == 4.0 and r["reference_load"] == 4.0 for r in rows)
    assert [r["rank"] for r in rows] == [1, 2]
    result = CliRunner().invoke(app, ["leaderboard", "--rank-by", "speed"])
    assert result.exit_code != 0


def test_compare_flips_without_samples_lists_nothing(warehouse: Warehouse) -> None:
    result = CliRunner().invoke(app, ["compare", "org/a", "org/b", "--flips"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no question changed its score"


def test_compare_as_csv(warehouse: Warehouse) -> None:
    result = CliRunner().invoke(app, ["compare", "org/a", "org/b", "--format", "csv", "--alpha", "0.1"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert {r["kind"] for r in rows} == {"baseline_model"} and {r["alpha"] for r in rows} >= {"0.1"}


def test_report_and_export(warehouse: Warehouse, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r" / "report.html"
    result = runner.invoke(app, ["report", "--out", str(out), "--publish"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>") and warehouse.storage.exists("_reports/report.html")

    target = tmp_path / "samples.parquet"
    result = runner.invoke(app, ["export", "--table", "latency_samples", "--out", str(target), "--since", "2026-11-02"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(target).num_rows == 600
    target = tmp_path / "board.csv"
    result = runner.invoke(app, ["export", "-t", "leaderboard", "-f", "csv", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert sorted(r["model_id"] for r in csv.DictReader(target.open())) == ["org/a", "org/b"]
    result = runner.invoke(app, ["export", "-t", "secrets", "-o", str(target)])
    assert result.exit_code != 0 and "unknown table" in result.output
