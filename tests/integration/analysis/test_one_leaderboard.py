"""One leaderboard: every way a user reads it gives the same rows and columns for the same warehouse.

``evals query "select * from leaderboard"``, ``evals export --table leaderboard``, ``evals leaderboard --format
json``, the report's embedded data and the Results page's JSON API are compared with each other, row for row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from analysis_history import publish_night
from factories import all_tables, publish_run, run_record, sha
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from evals.cli import app
from evals.warehouse import Warehouse

pytestmark = pytest.mark.integration


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """Three models over two nights on one board, plus a second (suite, scenario) board and a latency-only run."""
    uri = f"file://{tmp_path / 'wh'}"
    monkeypatch.setenv("EVALS_WAREHOUSE", uri)
    wh = Warehouse(uri)
    publish_night(wh, "org/a", 1, seed=1, accuracy=0.62, n_items=300, n_requests=120)
    publish_night(wh, "org/a", 2, seed=2, accuracy=0.66, n_items=300, ttft_scale=1.4, n_requests=120)
    publish_night(wh, "org/b", 2, seed=3, accuracy=0.71, n_items=300, ttft_scale=0.8, n_requests=120)
    nightly = run_record("org/c", day=2, suite="nightly", suite_version="1", scenario="chat-slo", scenario_version="1")
    publish_run(wh, nightly, all_tables(nightly, tasks={"arc_easy": 0.55, "gsm8k": 0.25}))
    latency_only = run_record("org/b", day=2, revision=sha("b-lat"), suite=None, suite_version=None)
    publish_run(wh, latency_only, {k: v for k, v in all_tables(latency_only).items() if k != "accuracy"})
    return wh


def _normal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as JSON would carry them (dates as ISO text), floats rounded to survive text round trips."""
    text = json.loads(json.dumps(rows, default=str))
    return [{k: round(v, 9) if isinstance(v, float) else v for k, v in row.items()} for row in text]


def _cli_json(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return _normal(json.loads(result.stdout))


def test_every_view_of_the_leaderboard_is_the_same_table(warehouse: Warehouse, tmp_path: Path) -> None:
    from evals.analysis.leaderboard import COLUMN_NAMES
    from evals.report.build import build_report
    from evals.ui.app import create_app

    queried = _cli_json("query", "select * from leaderboard", "--format", "json")
    board = _cli_json("leaderboard", "--format", "json")
    exported_file = tmp_path / "board.json"
    result = CliRunner().invoke(app, ["export", "--table", "leaderboard", "-f", "json", "-o", str(exported_file)])
    assert result.exit_code == 0, result.output
    exported = _normal(json.loads(exported_file.read_text()))
    html = build_report(warehouse, tmp_path / "report.html").read_text()
    embedded = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert embedded is not None
    reported = _normal(json.loads(embedded.group(1))["leaderboard"])
    with TestClient(create_app()) as client:
        served = _normal(client.get("/api/leaderboard").json()["rows"])

    assert board, "the fixture has published runs"
    for name, rows in (("query", queried), ("export", exported), ("report", reported), ("Results page", served)):
        assert [list(r) for r in rows] == [list(COLUMN_NAMES)] * len(rows), name
        assert rows == board, name
    # What the fixture put there: three boards, org/b ahead of org/a on accuracy, org/a from its latest night.
    boards = {(r["suite"], r["scenario"]) for r in board}
    assert boards == {("smoke", "smoke"), ("nightly", "chat-slo"), (None, "smoke")}
    smoke = [r for r in board if (r["suite"], r["scenario"]) == ("smoke", "smoke")]
    assert [(r["rank"], r["model_id"]) for r in smoke] == [(1, "org/b"), (2, "org/a")]
    assert [r["eval_date"] for r in smoke] == ["2026-11-02", "2026-11-02"]
