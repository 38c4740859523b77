"""The serving decision on a real warehouse: paired evidence read back, rows through the GX suite, approvals."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from analysis_history import TTFT_MEDIAN_MS, TTFT_SIGMA, accuracy_row, latency_tables
from factories import publish_run, run_record, sha
from scipy.stats import norm
from typer.testing import CliRunner

from evals.errors import ValidationFailed
from evals.warehouse import RunRecord, Warehouse

pytestmark = pytest.mark.integration

SERVING = """
champion: local:org/champ
traffic: {requests_per_s: 2.0}
policy:
  name: test-policy
  version: 3
  non_inferiority: {smoke: 2.0}
  latency: {ttft_p95_ms: 500}
  saving: {basis: monthly_cost, min_relative: 0.0}
"""


def _publish(
    wh: Warehouse,
    model: str,
    answers: np.ndarray,
    *,
    seed: int,
    ttft_scale: float = 1.0,
    n_requests: int = 200,
    trials: int = 1,
    trial_sd: float = 0.0,
) -> RunRecord:
    """One night-3 run of ``model``: 0/1 answers to shared questions (doc_hash by index) and a latency level."""
    record = run_record(model, 3, revision=sha(f"{model}@3"))
    rng = np.random.default_rng(seed)
    latency, samples = latency_tables(
        record, rng, ttft_scale=ttft_scale, n_requests=n_requests, trials=trials, trial_sd=trial_sd
    )
    accuracy = [accuracy_row(record, "arc_easy", float(answers.mean()), len(answers))]
    per_question = [
        {"model_id": record.model_id, "revision": record.revision, "suite": record.suite, "task": "arc_easy",
         "doc_id": i, "doc_hash": sha(f"q{i}"), "prompt_hash": None, "target_hash": None, "metric": "acc",
         "filter": "none", "aggregation": "mean", "value": float(v), "response": None, "target": None}
        for i, v in enumerate(answers)
    ]  # fmt: skip
    tables: dict[str, Any] = {"accuracy": accuracy, "accuracy_samples": per_question, "latency": latency}
    tables["latency_samples"] = samples
    return publish_run(wh, record, tables)


def _flip(answers: np.ndarray, rng: np.random.Generator, p_broken: float, p_fixed: float) -> np.ndarray:
    u = rng.random(len(answers))
    out = answers.copy()
    out[(answers == 1) & (u < p_broken)] = 0
    out[(answers == 0) & (u < p_fixed)] = 1
    return out


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    uri = f"file://{tmp_path / 'wh'}"
    serving = tmp_path / "serving.yaml"
    serving.write_text(SERVING)
    monkeypatch.setenv("EVALS_WAREHOUSE", uri)
    monkeypatch.setenv("EVALS_SERVING", str(serving))
    monkeypatch.setenv("EVALS_SERVING_APPROVAL_URL", "http://airflow/hitl/{decision_id}")
    wh = Warehouse(uri)
    rng = np.random.default_rng(7)
    champion = (rng.random(2000) < 0.7).astype(float)
    _publish(wh, "org/champ", champion, seed=1)
    _publish(wh, "org/good", _flip(champion, rng, 0.03, 0.07), seed=2, ttft_scale=0.8)  # better, faster
    _publish(wh, "org/worse", _flip(champion, rng, 0.25, 0.02), seed=3)  # loses ~17 points
    _publish(wh, "org/noisy", _flip(champion[:80], rng, 0.1, 0.1), seed=4)  # 80 questions: cannot tell
    return wh


def _serving() -> Any:
    from evals.pipeline.serving import load_serving

    config = load_serving()
    assert config is not None
    return config


def test_each_challenger_gets_its_outcome_and_the_rows_pass_the_gate(warehouse: Warehouse) -> None:
    from evals.analysis.leaderboard import connect
    from evals.pipeline.decide import decide_runs

    con = connect(warehouse)
    run_ids = [r[0] for r in con.execute("select run_id from runs").fetchall()]
    con.close()
    rows = decide_runs(run_ids, _serving(), warehouse=warehouse, write=True)
    outcomes = {r["model_id"]: r["outcome"] for r in rows}
    assert outcomes == {"org/good": "promote", "org/worse": "reject", "org/noisy": "hold"}, [r["reason"] for r in rows]
    worse = next(r for r in rows if r["model_id"] == "org/worse")
    assert "accuracy:smoke failed" in worse["reason"]
    noisy = next(r for r in rows if r["model_id"] == "org/noisy")
    assert "supports a margin of" in noisy["reason"]
    good = next(r for r in rows if r["model_id"] == "org/good")
    criteria = {c["name"]: c for c in json.loads(good["criteria"])}
    assert criteria["accuracy:smoke"]["ci_low"] > -0.02
    assert (
        "2000 paired" in criteria["accuracy:smoke"]["evidence"]
        or "paired questions" in criteria["accuracy:smoke"]["evidence"]
    )
    assert good["approval_url"] == f"http://airflow/hitl/{good['decision_id']}"
    assert good["champion_monthly_usd"] == pytest.approx(2.0 * 730)  # one replica of one GPU at $2/h

    con = connect(warehouse)
    stored = con.execute("select model_id, outcome, policy_version from decisions order by model_id").fetchall()
    con.close()
    assert stored == [("org/good", "promote", "3"), ("org/noisy", "hold", "3"), ("org/worse", "reject", "3")]


def test_a_p95_over_the_limit_is_not_promoted_when_the_trials_drifted(warehouse: Warehouse) -> None:
    """Five trials, each moved as a whole by exp(0.4 x N(0, 1)): the P95 a night like this shows is over the limit,
    though the pooled requests' order statistics, taken as independent, would put its upper bound under it."""
    from evals.analysis.leaderboard import connect
    from evals.analysis.limits import latency_limit
    from evals.pipeline.decide import decide_runs
    from evals.pipeline.evidence import RUN_COLUMNS, side

    scale, trial_sd, limit = 2.3, 0.4, 500.0
    true_p95 = TTFT_MEDIAN_MS * scale * math.exp(norm.ppf(0.95) * math.hypot(TTFT_SIGMA, trial_sd))
    assert true_p95 > limit  # 551 ms
    rng = np.random.default_rng(11)
    champion = (rng.random(2000) < 0.7).astype(float)
    answers = _flip(champion, rng, 0.03, 0.07)
    record = _publish(warehouse, "org/drifting", answers, seed=15, ttft_scale=scale, n_requests=300, trials=5,
                      trial_sd=trial_sd)  # fmt: skip
    con = connect(warehouse)
    ttft = con.execute(
        """select (first_token_s - sent_s) * 1000 from latency_samples where run_id = $run and ok""",
        {"run": record.run_id},
    ).fetchall()
    pooled_alone = latency_limit("ttft", None, [v for (v,) in ttft], limit, 0.05)
    assert pooled_alone.status == "pass"  # what the decision said before it read the trials
    # The evidence reads back each request's trial beside its TTFT and E2E, as published (60 requests a trial).
    run = con.execute(f"select {RUN_COLUMNS} from runs where run_id = $run", {"run": record.run_id}).df()
    me = side(con, run.to_dict("records")[0], _serving(), 0.9)
    assert me.ttft_trial == me.e2e_trial  # every request finished: the same requests in the same order
    assert sorted(me.ttft_trial) == [i * 5 // 300 for i in range(300)]
    assert len(me.ttft_ms) == len(me.e2e_ms) == 300
    con.close()

    (row,) = decide_runs([record.run_id], _serving(), warehouse=warehouse, write=False)
    criteria = {c["name"]: c for c in json.loads(row["criteria"])}
    latency = criteria["latency:ttft_p95_ms"]
    assert latency["status"] == "inconclusive", latency
    assert "between 5 trials" in latency["detail"]
    assert pooled_alone.ci_high is not None and pooled_alone.ci_high <= limit < latency["ci_high"]
    assert row["outcome"] != "promote"


def test_an_approval_is_recorded_and_names_the_new_champion(warehouse: Warehouse) -> None:
    from evals.analysis.leaderboard import connect
    from evals.pipeline.decide import decide_runs, record_approval

    con = connect(warehouse)
    good = con.execute("select run_id from runs where model_id = 'org/good'").fetchone()
    con.close()
    assert good is not None
    (row,) = decide_runs([good[0]], _serving(), warehouse=warehouse, write=True)
    at = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC)
    answer = record_approval(row["decision_id"], "approved", approver="alice", at=at, reason="looks good")
    assert answer == {
        "decision_id": row["decision_id"],
        "outcome": "approved",
        "champion": f"local:org/good@{sha('org/good@3')}",
    }
    # Deciding the same runs again keeps the approval already given.
    decide_runs([good[0]], _serving(), warehouse=warehouse, write=True)
    con = connect(warehouse)
    stored = con.execute("select approval_outcome, approver, approved_at from decisions").fetchall()
    con.close()
    assert stored == [("approved", "alice", at)]
    with pytest.raises(Exception, match="not one of"):
        record_approval(row["decision_id"], "maybe", approver=None, at=at)


def test_rows_that_break_the_suite_are_not_written(warehouse: Warehouse) -> None:
    from evals.analysis.leaderboard import connect
    from evals.pipeline.decide import decide_runs, write_decisions

    con = connect(warehouse)
    worse = con.execute("select run_id from runs where model_id = 'org/worse'").fetchone()
    con.close()
    assert worse is not None
    (row,) = decide_runs([worse[0]], _serving(), warehouse=warehouse, write=False)
    with pytest.raises(ValidationFailed, match="outcome follows from the statuses"):
        write_decisions(warehouse, row["run_id"], row["eval_date"], [{**row, "outcome": "promote"}])
    assert warehouse.read_table("decisions").num_rows == 0


def test_evals_decide_and_promote(warehouse: Warehouse) -> None:
    from evals.cli import app

    result = CliRunner().invoke(app, ["decide"])
    assert result.exit_code == 3, result.output  # org/good would be promoted
    assert "PROMOTE: org/good" in result.stdout and "REJECT: org/worse" in result.stdout
    result = CliRunner().invoke(app, ["promote", "org/noisy", "--reason", "we accept the risk", "--approver", "bob"])
    assert result.exit_code == 0, result.output
    assert "manual" in result.stdout
    con_rows = warehouse.read_table("decisions").to_pylist()
    assert [(r["model_id"], r["approval_outcome"], r["approver"]) for r in con_rows] == [("org/noisy", "manual", "bob")]


DECISION_JS = """
(() => {
  const section = Array.from(document.querySelectorAll('section'))
    .find(s => s.querySelector('h2')?.textContent.startsWith('Decision'));
  const first = document.querySelector('section h2')?.textContent;
  return {
    first,
    outcomes: Array.from(section.querySelectorAll('h3.decision')).map(h => h.dataset.outcome + ' ' + h.textContent),
    criteria: Array.from(section.querySelectorAll('table.decision-criteria tr')).length,
    approval: Array.from(section.querySelectorAll('.notice a')).map(a => a.href),
  };
})()
"""


@pytest.mark.slow
def test_the_report_opens_with_the_decision_in_a_browser(warehouse: Warehouse, tmp_path: Path) -> None:
    from browser import keep_screenshot, open_page

    from evals.analysis.leaderboard import connect
    from evals.pipeline.decide import decide_runs
    from evals.report.build import build_report

    con = connect(warehouse)
    run_ids = [r[0] for r in con.execute("select run_id from runs").fetchall()]
    con.close()
    rows = decide_runs(run_ids, _serving(), warehouse=warehouse, write=True)
    good = next(r for r in rows if r["outcome"] == "promote")
    report = build_report(warehouse, tmp_path / "report.html")
    result = open_page(report.as_uri(), tmp_path / "profile", expressions=[DECISION_JS],
                       screenshot=tmp_path / "decision.png")  # fmt: skip
    keep_screenshot(result.screenshot)
    assert result.errors == []
    found = result.values[0]
    assert found["first"].startswith("Decision")  # at the top of the report
    assert [o.split()[0] for o in found["outcomes"]] == ["promote", "hold", "reject"]
    assert "org/good" in found["outcomes"][0]
    assert found["criteria"] >= 3 * 4
    assert found["approval"] == [f"http://airflow/hitl/{good['decision_id']}"]
