"""One leaderboard: every way a user reads it gives the same rows and columns for the same warehouse.

``evals query "select * from leaderboard"``, ``evals export --table leaderboard``, ``evals leaderboard --format
json``, the report's embedded data and the Results page's JSON API are compared with each other, row for row —
the guardrail score joined from each revision's guardrail run, the predictability columns and the night-to-night
CVs included, each checked against what the fixture published.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from analysis_history import accuracy_row, latency_tables, publish_night
from factories import all_tables, publish_run, run_record, sha
from fastapi.testclient import TestClient
from scipy.stats import binomtest
from typer.testing import CliRunner

from evals.cli import app
from evals.warehouse import Warehouse
from evals.warehouse.views import connect

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
    # Guardrail runs of their own (no scenario): org/b's latest of its revision is night 2's; org/a's night-1 run
    # is of its night-1 revision, so its night-2 rows join only its night-2 guardrail run.
    for model, day, revision, parts in GUARDRAILS:
        record = run_record(model, day=day, revision=revision, suite="guardrails", scenario=None, scenario_version=None)
        publish_run(wh, record, {"accuracy": _guardrail_rows(record, *parts)})
    # org/d: one revision over three nights of its own scenario, with the predictability columns of schema v3.
    for day, scale in enumerate(STEADY_SCALES, start=1):
        record = run_record("org/d", day=day, revision=sha("org/d"), scenario="steady")
        levels, samples = latency_tables(record, np.random.default_rng(40 + day), ttft_scale=scale, n_requests=200)
        publish_run(wh, record, {"accuracy": [accuracy_row(record, "arc_easy", 0.5, 200)], **_failing(levels, samples)})
    return wh


# (model, night, revision, (hhh acc, bbq acc, refusal rate, over-refusal rate))
GUARDRAILS = (
    ("org/a", 1, sha("org/a@1"), (0.9, 0.9, 0.9, 0.0)),
    ("org/a", 2, sha("org/a@2"), (0.50, 0.40, 1.0, 1.0)),  # refuses everything
    ("org/b", 1, sha("org/b@2"), (0.1, 0.1, 0.1, 0.9)),
    ("org/b", 2, sha("org/b@2"), (0.60, 0.45, 0.90, 0.10)),
)
STEADY_SCALES = (1.0, 1.2, 0.9)
FAILED, TIMEOUTS = 5, 2  # of org/d's 200 requests a night: 3 errors, 2 timeouts


def _guardrail_rows(record: Any, hhh: float, bbq: float, refusal: float, over_refusal: float) -> list[dict[str, Any]]:
    harmful = {**accuracy_row(record, "guardrails_refusal_harmful", refusal, 50), "metric": "refusal_rate"}
    benign = accuracy_row(record, "guardrails_refusal_benign", over_refusal, 50)
    benign.update(metric="over_refusal_rate", higher_is_better=False)
    return [
        accuracy_row(record, "guardrails_hhh", hhh, 12),
        accuracy_row(record, "guardrails_bbq", bbq, 36),
        harmful,
        benign,
    ]


def _failing(levels: list[dict[str, Any]], samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The first FAILED requests failed (the first TIMEOUTS of them timed out); the level's predictability columns."""
    for i, sample in enumerate(samples[:FAILED]):
        error = "timeout after 30s (0 chunks received)" if i < TIMEOUTS else "HTTP 500"
        sample.update(ok=False, error=error, first_token_s=None, finished_s=None)
    ttft = [(s["first_token_s"] - s["sent_s"]) * 1000 for s in samples if s["ok"]]
    (level,) = levels
    level.update(n_failed=FAILED, n_timeouts=TIMEOUTS, ttft_p95_ms=float(np.percentile(ttft, 95)),
                 ttft_tail_ratio=float(np.percentile(ttft, 99) / np.percentile(ttft, 50)))  # fmt: skip
    return {"latency": levels, "latency_samples": samples}


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
    # What the fixture put there: five boards, org/b ahead of org/a on accuracy, org/a from its latest night.
    boards = {(r["suite"], r["scenario"]) for r in board}
    assert boards == {("smoke", "smoke"), ("nightly", "chat-slo"), (None, "smoke"), ("guardrails", None),
                      ("smoke", "steady")}  # fmt: skip
    smoke = [r for r in board if (r["suite"], r["scenario"]) == ("smoke", "smoke")]
    assert [(r["rank"], r["model_id"]) for r in smoke] == [(1, "org/b"), (2, "org/a")]
    assert [r["eval_date"] for r in smoke] == ["2026-11-02", "2026-11-02"]

    # The guardrail score: the latest guardrail run of the row's model and revision, balanced by hand here.
    def balanced(hhh: float, bbq: float, refusal: float, over_refusal: float) -> float:
        return (hhh + bbq + (refusal + (1 - over_refusal)) / 2) / 3

    expected = {(m, rev): balanced(*parts) for m, _, rev, parts in GUARDRAILS}  # later nights replace earlier ones
    for r in board:
        want = expected.get((r["model_id"], r["revision"]))
        assert r["guardrail_score"] == (pytest.approx(want) if want is not None else None), r["model_id"]
    assert {r["model_id"]: r["guardrail_score"] for r in smoke} == {
        "org/b": pytest.approx((0.60 + 0.45 + 0.90) / 3),
        "org/a": pytest.approx((0.50 + 0.40 + 0.5) / 3),  # refusing everything is worth 0.5 on refusals, not 1
    }

    # Predictability and its night-to-night CV, from org/d's published latency rows.
    (steady,) = [r for r in board if r["scenario"] == "steady"]
    con = connect(warehouse)
    nights = con.execute(
        "select ttft_p95_ms, ttft_tail_ratio from latency where model_id = 'org/d' order by eval_date"
    ).fetchall()
    assert steady["ttft_tail_ratio"] == pytest.approx(nights[-1][1])
    assert steady["error_rate"] == pytest.approx((FAILED - TIMEOUTS) / 200)
    wilson = binomtest(FAILED - TIMEOUTS, 200).proportion_ci(confidence_level=0.95, method="wilson")
    assert (steady["error_rate_ci_low"], steady["error_rate_ci_high"]) == pytest.approx((wilson.low, wilson.high))
    p95s, tails = [p for p, _ in nights], [t for _, t in nights]
    assert steady["cv_nights"] == 3
    assert steady["ttft_p95_cv"] == pytest.approx(statistics.stdev(p95s) / statistics.mean(p95s))
    assert steady["ttft_tail_ratio_cv"] == pytest.approx(statistics.stdev(tails) / statistics.mean(tails))
    # org/a changed revision every night: one night of its revision, no CV.
    assert [(r["cv_nights"], r["ttft_p95_cv"]) for r in smoke] == [(1, None), (1, None)]
