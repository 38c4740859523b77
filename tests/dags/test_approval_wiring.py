"""The serving decision's wiring: decide after the report, one approval per promote, every answer recorded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag


def test_nightly_decides_after_the_report_and_asks_per_promote(dagbag) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk import TriggerRule

    from evals.orchestration.approval import ChampionApproval

    for dag_id in ("evals_nightly", "evals_manual"):
        dag = dagbag.dags[dag_id]
        assert "compare_and_report" in dag.get_task("decide").upstream_task_ids
        approve = dag.get_task("approve")
        assert approve.upstream_task_ids == {"open_approvals"}
        assert approve.operator_class is ChampionApproval or approve.operator_name == "ChampionApproval"
        assert approve.partial_kwargs["response_timeout"] == dt.timedelta(hours=24)
        assert approve.partial_kwargs["defaults"] == "Reject"
        apply = dag.get_task("apply_approval")
        assert apply.trigger_rule == TriggerRule.NONE_FAILED
        assert [a.uri for a in apply.outlets] == ["x-evals://serving/champion"]


def test_the_deployment_dag_is_scheduled_on_the_champion_asset(dagbag) -> None:  # type: ignore[no-untyped-def]
    from evals.orchestration.approval import CHAMPION

    dag = dagbag.dags["evals_deploy_champion"]
    assert list(dag.timetable.asset_condition.objects) == [CHAMPION]


def test_the_timeout_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from evals.orchestration.routing import Routing

    monkeypatch.setenv("EVALS_APPROVAL_TIMEOUT_S", "90")
    assert Routing.from_settings().approval_timeout_s == 90.0


def test_answers_become_outcomes() -> None:
    from evals.orchestration.approval import answer

    at = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    alice = {"id": "alice", "name": "Alice"}
    approved = {"chosen_options": ["Approve"], "responded_by_user": alice, "responded_at": at, "params_input": {}}
    assert answer(approved) == {"outcome": "approved", "approver": "Alice", "at": at, "reason": None}
    rejected = {**approved, "chosen_options": ["Reject"], "params_input": {"reason": "too slow"}}
    assert answer(rejected)["outcome"] == "rejected" and answer(rejected)["reason"] == "too slow"
    # The scheduler's timeout sweep answers with the defaults (Reject) by nobody.
    timeout = {**approved, "chosen_options": ["Reject"], "responded_by_user": None, "responded_at": at.isoformat()}
    assert answer(timeout) == {"outcome": "timed_out", "approver": None, "at": at, "reason": None}
    assert answer(None)["outcome"] == "timed_out"


def test_the_request_carries_the_evidence_and_the_report_link() -> None:
    from evals.orchestration.approval import approval_request

    request = approval_request(
        {
            "decision_id": "d1",
            "challenger": "org/m",
            "challenger_run_id": "r1",
            "summary": "**promote**: -42 % cost",
            "report": "file:///wh/_reports/report.html",
        }
    )
    assert request["subject"] == "Promote org/m to serve production?"
    assert request["body"].startswith("**promote**: -42 % cost")
    assert "[Full report](file:///wh/_reports/report.html)" in request["body"]
