"""CeleryExecutor for real: Postgres + Redis + scheduler, DAG processor, API server and two Celery workers.

``evals_manual`` is triggered on the tiny checkpoint; the metadata DB must show ``checkpoint.evaluate`` (serve,
accuracy, latency) on the worker of the ``gpu`` queue and every other task on the ``default`` worker, and the
warehouse must hold the run exactly once. Each worker reports its own name as ``task_instance.hostname``
(``[core] hostname_callable``), as separate machines would.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest
from conftest import S3Server

from evals.warehouse import Warehouse
from evals.warehouse.views import connect

if TYPE_CHECKING:
    from integration.distributed.cluster import Cluster
    from integration.distributed.services import Postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

TINY = "package:evals-test/tiny-llama"
RUN_ID = "celery-routing-check"
WORKERS = {"cpu-worker": "default", "gpu-worker": "gpu"}  # name -> Celery queue


def test_gpu_work_runs_on_the_gpu_queue_worker_and_publishes_once(
    cluster: tuple[Cluster, str], postgres: Postgres, s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    airflow, warehouse = cluster
    started = time.monotonic()
    workers = {name: (queue, 1) for name, queue in WORKERS.items()}
    timings = airflow.boot(postgres, "evals_manual", workers, {"gpu": 1})  # the nightly DAG stays paused

    conf = {"checkpoints": [TINY], "suite": "smoke", "scenario": "smoke", "limit": 2}
    airflow.run("dags", "trigger", "evals_manual", "--run-id", RUN_ID, "-c", json.dumps(conf))
    state = airflow.wait_for_run(postgres, "evals_manual", RUN_ID, 600)
    timings["dag run"] = time.monotonic() - started - timings["services up"]
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
    assert state == "success", airflow.tails()

    rows = postgres.query(
        "select task_id, state, hostname, queue, pool from task_instance where dag_id = %s and run_id = %s",
        "evals_manual",
        RUN_ID,
    )
    tasks = {task_id: (state, host, queue, pool) for task_id, state, host, queue, pool in rows}
    assert set(tasks) == {
        "plan",
        "checkpoint.materialize",
        "checkpoint.evaluate",
        "checkpoint.publish",
        "compare_and_report",
        "summarize",
        "decide",
        "open_approvals",
        "approve",
        "apply_approval",
    }
    assert tasks.pop("checkpoint.evaluate") == ("success", "gpu-worker", "gpu", "gpu")
    # No serving configuration here: the decision runs (and finds nothing to decide); no approval is asked.
    approvals = {name: tasks.pop(name) for name in ("open_approvals", "approve", "apply_approval")}
    assert all(state in ("success", "skipped") and host != "gpu-worker" for state, host, _, _ in approvals.values())
    assert all(seen == ("success", "cpu-worker", "default", "default_pool") for seen in tasks.values()), tasks

    # The test process reads the warehouse with plain AWS credentials (the cluster used the Airflow connection).
    monkeypatch.setenv("EVALS_S3_ENDPOINT", s3_env.endpoint)
    monkeypatch.setenv("EVALS_CATALOG_URI", postgres.url())
    con = connect(Warehouse(warehouse))
    records = con.execute("select run_id, status, dag_run_id, logical_date, model_id, error from all_runs").fetchall()
    assert len(records) == 1, records
    assert con.execute("select status, dag_run_id from runs").fetchall() == [("published", RUN_ID)]
    assert con.execute("select count(*) from accuracy").fetchone()[0] > 0  # type: ignore[index]
    assert con.execute("select count(*) from latency_samples").fetchone()[0] > 0  # type: ignore[index]
