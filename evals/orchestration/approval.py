"""The serving decision in Airflow: decide, a human's approval per promoted challenger, and what the answer records.

After the night's report, ``decide`` asks the decision policy (:mod:`evals.pipeline.decide`). Each ``promote`` opens a
human-in-the-loop approval (``approve``, mapped: one per promoted challenger) whose body is the evidence summary and a
link to the report. ``apply_approval`` records every answer with who and when; an approval also emits an event on
:data:`CHAMPION`, the Asset a deployment DAG is scheduled on, with the new champion in its ``extra``.

How to answer: the Airflow UI's "Required actions" page (Browse → Required actions, or the task's page), or the REST
API: ``PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/approve/{map_index}/hitlDetails`` with
``{"chosen_options": ["Approve"]}`` (or ``["Reject"]``; optional ``"params_input": {"reason": "..."}``); pending ones
are listed by ``GET /api/v2/dags/~/dagRuns/~/hitlDetails?response_received=false``. Nobody answers within
``EVALS_APPROVAL_TIMEOUT_S`` (default 24 h): the scheduler applies the default (Reject, by nobody), recorded as
``timed_out`` — the challenger is held and the next night compares again.

``airflow dags test`` (the demo) runs without a scheduler, so nothing would ever time an approval out and the run
would wait for an answer forever: such a run does not ask, and records each promote as ``timed_out`` with the reason
(``EVALS_APPROVAL_IN_TEST_RUNS=true`` asks anyway; answer it through an API server on the same metadata DB).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import Asset, Param, TriggerRule, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from evals.orchestration.routing import Routing

log = logging.getLogger(__name__)

# A deployment DAG scheduled on this Asset learns of every approved switch; ``extra["champion"]`` is the new one.
# The URI's scheme starts with "x-" (Airflow's custom-scheme convention): any other scheme makes the Asset load every
# provider's URI normalizers at parse time (~0.6 s per DAG file parse).
CHAMPION = Asset(name="serving_champion", uri="x-evals://serving/champion", group="checkpoint-evals")
DECISION_STEPS = "evals.pipeline.decide"  # the module with decide_step and record_approval
APPROVE_TASK = "approve"
DAG_TEST_USER = "dag_test"  # the triggering user of a dag.test() / `airflow dags test` run
NOT_ASKED = (
    "not asked: an `airflow dags test` run has no scheduler to time an approval out "
    "(EVALS_APPROVAL_IN_TEST_RUNS=true asks anyway); held until the next night or `evals promote`"
)


class ChampionApproval(ApprovalOperator):
    """Approve or Reject one promotion. Unlike ApprovalOperator, a Reject skips nothing downstream: every answer
    (and the timeout's default, Reject by nobody) reaches ``apply_approval``, which records it."""

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        result = HITLOperator.execute_complete(self, context=context, event=event)
        self.hitl_summary_extra["approved"] = list(result["chosen_options"]) == [self.APPROVE]
        return result


def approval_request(promoted: Mapping[str, Any]) -> dict[str, str]:
    """Subject and Markdown body of one promoted challenger's approval: the evidence and the report's link."""
    challenger = promoted.get("challenger") or promoted.get("decision_id") or "challenger"
    body = [str(promoted.get("summary") or "").strip()]
    if promoted.get("report"):
        body.append(f"[Full report]({promoted['report']})")
    body.append(
        f"Decision `{promoted.get('decision_id')}`, challenger run `{promoted.get('challenger_run_id')}`. "
        "**Approve** makes it the serving champion (the deployment DAG reacts); **Reject** keeps today's champion. "
        "No answer before the timeout: held, compared again next night."
    )
    return {"subject": f"Promote {challenger} to serve production?", "body": "\n\n".join(p for p in body if p)}


def answer(response: Mapping[str, Any] | None) -> dict[str, Any]:
    """An approval's XCom as (outcome, approver, at, reason): approved or rejected by a user, else timed_out."""
    if not response:
        return {"outcome": "timed_out", "approver": None, "at": None, "reason": None}
    user = response.get("responded_by_user") or {}
    approver = (user.get("name") or user.get("id")) if isinstance(user, Mapping) else None
    at = response.get("responded_at")
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at)
    reason = (response.get("params_input") or {}).get("reason") or None
    if approver is None:  # the scheduler applied the default after the timeout
        return {"outcome": "timed_out", "approver": None, "at": at, "reason": reason}
    chosen = list(response.get("chosen_options") or [])
    outcome = "approved" if chosen == [ChampionApproval.APPROVE] else "rejected"
    return {"outcome": outcome, "approver": str(approver), "at": at, "reason": reason}


def is_test_run(context: Mapping[str, Any]) -> bool:
    return getattr(context["dag_run"], "triggering_user_name", None) == DAG_TEST_USER


def _steps(module: str) -> Any:
    import importlib

    return importlib.import_module(module)


@task(task_id="decide")
def decide(plan: list[dict[str, Any]], steps: str = DECISION_STEPS) -> dict[str, Any]:
    """Tonight's challengers against the champion, under the declared policy (promote | hold | reject)."""
    from evals.orchestration.group import run_context

    return dict(_steps(steps).decide_step(plan, run_context()))


@task(task_id="open_approvals")
def open_approvals(decision: dict[str, Any]) -> list[dict[str, str]]:
    """One approval request per promoted challenger (none in an `airflow dags test` run, see the module doc)."""
    from evals.settings import get_settings

    promote = list(decision.get("promote") or [])
    if promote and is_test_run(get_current_context()) and not get_settings().approval_in_test_runs:
        log.warning("%d promote(s) %s", len(promote), NOT_ASKED)
        return []
    return [approval_request(p) for p in promote]


@task(task_id="apply_approval", trigger_rule=TriggerRule.NONE_FAILED, outlets=[CHAMPION])
def apply_approval(decision: dict[str, Any], steps: str = DECISION_STEPS) -> dict[str, Any]:
    """Record each promote's answer (who, when); on an approval, announce the new champion on the Asset."""
    context = get_current_context()
    record_approval = _steps(steps).record_approval
    asked = not is_test_run(context) or _asked_in_tests()
    recorded, champion = [], None
    for index, promoted in enumerate(decision.get("promote") or []):
        response = context["ti"].xcom_pull(task_ids=APPROVE_TASK, map_indexes=index) if asked else None
        given = answer(response)
        at = given["at"] or dt.datetime.now(dt.UTC)
        reason = given["reason"] or (None if asked else NOT_ASKED)
        result = record_approval(
            promoted["decision_id"], given["outcome"], approver=given["approver"], at=at, reason=reason
        )
        recorded.append({**result, "approver": given["approver"], "at": at.isoformat()})
        log.info("decision %s: %s by %s", promoted["decision_id"], given["outcome"], given["approver"] or "nobody")
        if given["outcome"] == "approved" and result.get("champion") is not None:
            champion = {"champion": result["champion"], **{k: recorded[-1][k] for k in ("decision_id", "approver")}}
            champion["approved_at"] = recorded[-1]["at"]
    if champion is None:  # a skipped task emits no Asset event: the deployment DAG does not run
        raise AirflowSkipException(f"no challenger approved; recorded: {recorded}")
    context["outlet_events"][CHAMPION].extra = champion
    return {"recorded": recorded, **champion}


def champion_from_events(events: Any) -> dict[str, Any]:
    """The newest champion announced in a DAG run's triggering Asset events (logged); {} when none triggered it."""
    found = list(events[CHAMPION]) if events is not None and CHAMPION in events else []
    if not found:
        log.warning("no champion event triggered this run: nothing to deploy")
        return {}
    extra = dict(found[-1].extra or {})
    log.info(
        "new serving champion %s (decision %s, approved by %s at %s)",
        extra.get("champion"),
        extra.get("decision_id"),
        extra.get("approver"),
        extra.get("approved_at"),
    )
    return extra


def _asked_in_tests() -> bool:
    from evals.settings import get_settings

    return get_settings().approval_in_test_runs


def wire_decision(plan: Any, after: Any, routing: Routing, *, steps: str = DECISION_STEPS) -> Any:
    """after (the night's report) → decide → one approval per promote → apply_approval; returns the last task."""
    decision: Any = decide(plan, steps)  # an XComArg standing for the dict
    after >> decision
    approvals = ChampionApproval.partial(
        task_id=APPROVE_TASK,
        defaults=ChampionApproval.REJECT,  # the timeout's answer, given by nobody: recorded as timed_out
        response_timeout=dt.timedelta(seconds=routing.approval_timeout_s),
        params={"reason": Param(None, type=["null", "string"], description="Why (recorded with the decision).")},
        doc_md=__doc__,
    ).expand_kwargs(open_approvals(decision))
    applied = apply_approval(decision, steps)
    approvals >> applied
    return applied
