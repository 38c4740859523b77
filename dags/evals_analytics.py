"""Analytics: when results land, compact and expire snapshots, find change points, refresh the report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import dag, task

from evals.orchestration.group import RESULTS
from evals.orchestration.policy import default_args
from evals.orchestration.routing import Routing

routing = Routing.from_settings()


@dag(
    dag_id="evals_analytics",
    schedule=[RESULTS],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,  # one refresh at a time is enough; overlapping compactions would be safe (Iceberg commits)
    default_args=default_args(routing.retries, routing.retry_delay_s),
    tags=["checkpoint-evals", "analytics"],
    doc_md=__doc__,
)
def evals_analytics() -> None:
    @task(task_id="compact")
    def compact() -> dict[str, Any]:
        """Rewrite partitions older than EVALS_COMPACT_AFTER_DAYS as one file each (one Iceberg commit per
        partition; results unchanged), expire snapshots and delete orphaned files after the retention period."""
        from evals.pipeline.steps import compact_step

        return compact_step()

    @task(task_id="change_points")
    def change_points() -> dict[str, Any]:
        """E-divisive change points of every model's nightly series, stored in the change_points table."""
        from evals.analysis.change_series import detect_and_store

        return detect_and_store()

    @task(task_id="refresh_report")
    def refresh_report() -> dict[str, Any]:
        """Rebuild the leaderboard and the HTML report under the warehouse's _reports/."""
        from evals.pipeline.steps import report_step

        return report_step()

    compact() >> change_points() >> refresh_report()


evals_analytics()
