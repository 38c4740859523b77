"""Deploy the new serving champion: runs whenever a human approves a promotion (an event on the champion Asset).

An example to replace: this body only logs the new champion. A real deployment rolls it out here (update the
serving config, a Kubernetes manifest, a gateway route...). The event's ``extra`` carries ``champion`` (the new
champion's ref), ``decision_id``, ``approver`` and ``approved_at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import dag, task

from evals.orchestration.approval import CHAMPION
from evals.orchestration.policy import default_args
from evals.orchestration.routing import Routing

routing = Routing.from_settings()


@dag(
    dag_id="evals_deploy_champion",
    schedule=[CHAMPION],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(routing.retries, routing.retry_delay_s),
    tags=["checkpoint-evals", "deploy"],
    doc_md=__doc__,
)
def evals_deploy_champion() -> None:
    @task(task_id="deploy", inlets=[CHAMPION])
    def deploy(triggering_asset_events: Any = None) -> dict[str, Any]:
        """Log the approved champion (replace with your rollout)."""
        from evals.orchestration.approval import champion_from_events

        return champion_from_events(triggering_asset_events)

    deploy()


evals_deploy_champion()
