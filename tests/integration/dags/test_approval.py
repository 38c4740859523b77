"""The human's approval on a real Airflow (API server, scheduler, DAG processor): pending in the REST API, answered
there, recorded with the approver, announced on the champion Asset; a timeout records timed_out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.dags.stack import AIRFLOW, Airflow, airflow_stack, run_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent

# Two DAGs wired like the nightly's decision (decide → approve[] → apply_approval) after a stub plan, with the
# decision steps of approval_stub.py: one waits for an answer (24 h timeout), one times out after 15 s.
PROBE_DAGS = """
import datetime as dt
from dataclasses import replace
from airflow.sdk import dag, task
from evals.orchestration.approval import wire_decision
from evals.orchestration.policy import default_args
from evals.orchestration.routing import Routing

routing = Routing.from_settings()
for dag_id, timeout_s in (("probe_answered", 24 * 3600.0), ("probe_timeout", 15.0)):
    @dag(dag_id=dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), catchup=False,
         default_args=default_args(1, routing.retry_delay_s), tags=["checkpoint-evals"])
    def probe():
        @task
        def plan():
            return []
        planned = plan()
        wire_decision(planned, planned, replace(routing, approval_timeout_s=timeout_s), steps="approval_stub")
    probe()
"""


@pytest.fixture
def airflow(tmp_path: Path) -> Iterator[Airflow]:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "probes.py").write_text(PROBE_DAGS)
    shutil.copy(REPO / "dags" / "evals_deploy_champion.py", dags)
    extra = {"PYTHONPATH": str(HERE), "EVALS_TEST_APPROVALS": str(tmp_path / "approvals.jsonl")}  # approval_stub
    with airflow_stack(tmp_path, dags, extra_env=extra) as cluster:
        yield cluster


def recorded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_approval_through_the_rest_api_records_the_approver_and_triggers_the_deployment(airflow: Airflow) -> None:
    for dag_id in ("probe_answered", "probe_timeout", "evals_deploy_champion"):
        airflow.wait(f"DAG {dag_id}", lambda d=dag_id: airflow.api("GET", f"/dags/{d}"))  # type: ignore[misc]
    runs = {
        d: airflow.api("POST", f"/dags/{d}/dagRuns", json={"logical_date": None})["dag_run_id"]
        for d in ("probe_answered", "probe_timeout")
    }

    # The approval is pending in the REST API, with the evidence summary and the report's link in its body.
    def pending() -> list[dict[str, Any]]:
        details = airflow.api("GET", "/dags/probe_answered/dagRuns/~/hitlDetails", params={"response_received": False})
        return [d for d in details["hitl_details"] if d["task_instance"]["state"] == "awaiting_input"]

    (detail,) = airflow.wait("a pending approval", pending)
    # Airflow 3.3.2 race: a response (or a timeout) resuming the task before the scheduler has processed the
    # executor's event of its park makes the scheduler fail the resumed try. Answer after that event, as a
    # human would; the 15 s timeout above leaves the same margin.
    scheduler_log = airflow.home / "scheduler.log"
    parked = "TaskInstance Finished: dag_id=probe_answered, task_id=approve"
    airflow.wait("the scheduler to see the park", lambda: parked in scheduler_log.read_text(errors="replace"))
    assert detail["subject"] == "Promote org/challenger to serve production?"
    assert "P95 TTFT -31 %" in detail["body"]
    assert "(http://reports.example/report.html#decision)" in detail["body"]
    assert detail["options"] == ["Approve", "Reject"] and detail["defaults"] == ["Reject"]
    ti = detail["task_instance"]
    assert (ti["task_id"], ti["map_index"], ti["state"]) == ("approve", 0, "awaiting_input")

    # Answered through the REST API, as the user "alice".
    path = f"/dags/probe_answered/dagRuns/{runs['probe_answered']}/taskInstances/approve/0/hitlDetails"
    answer = {"chosen_options": ["Approve"], "params_input": {"reason": "cheaper at equal accuracy"}}
    assert airflow.api("PATCH", path, json=answer)["responded_by"]["name"] == "alice"
    for dag_id, run_id in runs.items():
        airflow.wait(f"{dag_id} to finish", lambda d=dag_id, r=run_id: run_state(airflow, d, r) == "success")  # type: ignore[misc]

    by_outcome = {r["outcome"]: r for r in recorded(Path(airflow.env["EVALS_TEST_APPROVALS"]))}
    assert set(by_outcome) == {"approved", "timed_out"}
    assert by_outcome["approved"]["approver"] == "alice"
    assert by_outcome["approved"]["reason"] == "cheaper at equal accuracy"
    assert by_outcome["approved"]["decision_id"].startswith(runs["probe_answered"])
    assert by_outcome["timed_out"]["approver"] is None

    # Only the approval announced a champion: the deployment DAG ran once, with the new champion.
    events = airflow.api("GET", "/assets/events", params={"source_dag_id": "probe_answered"})["asset_events"]
    assert [e["extra"]["champion"]["model_id"] for e in events] == ["org/challenger"]
    assert not airflow.api("GET", "/assets/events", params={"source_dag_id": "probe_timeout"})["asset_events"]
    deploy = airflow.wait(
        "the deployment DAG",
        lambda: [
            r for r in airflow.api("GET", "/dags/evals_deploy_champion/dagRuns")["dag_runs"] if r["state"] == "success"
        ],
    )
    assert len(deploy) == 1
    xcom = airflow.api(
        "GET",
        f"/dags/evals_deploy_champion/dagRuns/{deploy[0]['dag_run_id']}/taskInstances/deploy/xcomEntries/return_value",
    )
    assert xcom["value"]["champion"] == {"model_id": "org/challenger", "run_id": "run-c"}
    assert xcom["value"]["approver"] == "alice"


def test_airflow_dags_test_does_not_wait_for_an_approval(tmp_path: Path) -> None:
    """`airflow dags test` (the demo) has no scheduler to time an approval out: the promote is recorded as
    timed_out with the reason, at once, instead of the run waiting forever for an answer."""
    from evals.orchestration.approval import NOT_ASKED

    home, dags = tmp_path / "airflow", tmp_path / "dags"
    dags.mkdir(parents=True)
    (dags / "probes.py").write_text(PROBE_DAGS)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EVALS_"))}
    env = {
        **keep,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(HERE),  # approval_stub
        "EVALS_TEST_APPROVALS": str(tmp_path / "approvals.jsonl"),
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=180)
    done = subprocess.run(
        [AIRFLOW, "dags", "test", "probe_answered"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "not asked: an `airflow dags test` run" in done.stdout + done.stderr
    (record,) = recorded(tmp_path / "approvals.jsonl")
    assert (record["outcome"], record["approver"], record["reason"]) == ("timed_out", None, NOT_ASKED)
