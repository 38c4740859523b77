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
    assert lines[1].split() == ["metric", "A", "B", "delta", "CI", "verdict"]
    ttft = next(line for line in lines if line.startswith("latency:ttft_p95_ms@concurrency=4"))
    assert ttft.endswith("!! regression") and "[" in ttft
    assert "95% two-sided" in lines[-1]


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
