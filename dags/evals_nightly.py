"""Nightly: discover new checkpoints, evaluate each one (accuracy + latency), validate, publish, compare."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Param, dag, task

from evals.orchestration.group import run_context, wire
from evals.orchestration.params import scenario_names, suite_names
from evals.orchestration.policy import default_args
from evals.orchestration.routing import Routing

routing = Routing.from_settings()


@dag(
    dag_id="evals_nightly",
    schedule=routing.schedule,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(routing.retries, routing.retry_delay_s),
    tags=["checkpoint-evals", "nightly"],
    params={
        "watchlist": Param(None, type=["null", "string"], description="Watch-list YAML (default: EVALS_WATCHLIST)."),
        "suite": Param("smoke", enum=suite_names(), description="Accuracy suite."),
        "scenario": Param("smoke", enum=scenario_names(), description="Latency scenario."),
        "guardrails": Param(
            "none",
            enum=[*suite_names(), "none"],
            description="Also run this guardrail suite on each checkpoint (its own run; 'none': skip).",
        ),
        "reevaluate": Param(
            False,
            type="boolean",
            description="Evaluate every watched checkpoint again, not only new ones (a canary for the serving stack).",
        ),
    },
    doc_md=__doc__,
)
def evals_nightly() -> None:
    @task(task_id="discover")
    def discover(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """New checkpoints of the watch-list not yet evaluated for this suite and scenario."""
        from evals.pipeline.steps import plan_step

        return plan_step("nightly", dict(params or {}), run_context())

    wire(discover(), routing)


evals_nightly()
