"""A stand-in for evals.pipeline.decide in the approval test: one promote; each recorded answer appended to a file."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any


def decide_step(plan: list[dict[str, Any]], context: dict[str, Any]) -> dict[str, Any]:
    decision_id = f"{context['dag_run_id']}:org/challenger"
    summary = "**promote** org/challenger: accuracy -0.2 pts (CI -0.9..0.5, margin 1.0); P95 TTFT -31 %; cost -42 %."
    promoted = {
        "decision_id": decision_id,
        "challenger": "org/challenger",
        "challenger_run_id": "run-c",
        "summary": summary,
    }
    return {
        "configured": True,
        "decisions": [
            {"decision_id": decision_id, "challenger": "org/challenger", "outcome": "promote", "summary": summary}
        ],
        "promote": [{**promoted, "report": "http://reports.example/report.html#decision"}],
    }


def record_approval(
    decision_id: str, outcome: str, *, approver: str | None, at: dt.datetime, reason: str | None = None
) -> dict[str, Any]:
    with open(os.environ["EVALS_TEST_APPROVALS"], "a") as log:
        log.write(
            json.dumps(
                {
                    "decision_id": decision_id,
                    "outcome": outcome,
                    "approver": approver,
                    "at": at.isoformat(),
                    "reason": reason,
                }
            )
            + "\n"
        )
    champion = {"model_id": "org/challenger", "run_id": "run-c"} if outcome == "approved" else None
    return {"decision_id": decision_id, "outcome": outcome, "champion": champion}
