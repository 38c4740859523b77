"""CeleryExecutor for real: Postgres + Redis + scheduler, DAG processor, API server and two Celery workers.

``evals_manual`` is triggered on the tiny checkpoint; the metadata DB must show ``checkpoint.evaluate`` (serve,
accuracy, latency) on the worker of the ``gpu`` queue and every other task on the ``default`` worker, and the
warehouse must hold the run exactly once. Each worker reports its own name as ``task_instance.hostname``
(``[core] hostname_callable``), as separate machines would.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from conftest import S3Server

from evals.warehouse import Warehouse
from evals.warehouse.views import connect

if TYPE_CHECKING:
    from integration.distributed.conftest import Cluster, Postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

TINY = "package:evals-test/tiny-llama"
RUN_ID = "celery-routing-check"
WORKERS = {"cpu-worker": "default", "gpu-worker": "gpu"}  # name -> Celery queue


def wait_for(what: str, check: Any, cluster: Cluster, timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        cluster.check_alive()
        try:
            result = check()
        except Exception:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{cluster.tails()}"
        time.sleep(every)


def test_gpu_work_runs_on_the_gpu_queue_worker_and_publishes_once(
    cluster: tuple[Cluster, str], postgres: Postgres, s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    airflow, warehouse = cluster
    timings: dict[str, float] = {}
    started = time.monotonic()

    airflow.run("db", "migrate", timeout=300)
    airflow.run("pools", "set", "gpu", "1", "GPU slots (one per GPU)")
    timings["migrate+pool"] = time.monotonic() - started

    port = airflow.env["AIRFLOW__API__PORT"]
    airflow.start("api-server", "api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1")
    airflow.start("scheduler", "scheduler")
    airflow.start("dag-processor", "dag-processor")
    for name, queue in WORKERS.items():
        airflow.start(
            name,
            "celery",
            "worker",
            "--queues",
            queue,
            "--celery-hostname",
            f"{name}@%h",
            "--concurrency",
            "1",
            "--pid",
            str(airflow.workdir / f"{name}.pid"),
            "--skip-serve-logs",
            "--without-mingle",
            "--without-gossip",
            EVALS_TEST_WORKER_NAME=name,
        )
    health = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    wait_for("the API server", lambda: httpx.get(health, timeout=5).status_code == 200, airflow, 180)
    wait_for(
        "evals_manual to be parsed",
        lambda: postgres.query("select 1 from serialized_dag where dag_id = %s", "evals_manual"),
        airflow,
        180,
    )
    airflow.run("dags", "unpause", "evals_manual")  # only this DAG: the nightly one stays paused
    timings["services up"] = time.monotonic() - started

    conf = {"checkpoints": [TINY], "suite": "smoke", "scenario": "smoke", "limit": 2}
    airflow.run("dags", "trigger", "evals_manual", "--run-id", RUN_ID, "-c", json.dumps(conf))
    state = wait_for(
        "the DAG run to finish",
        lambda: next(
            (
                s
                for (s,) in postgres.query("select state from dag_run where run_id = %s", RUN_ID)
                if s in ("success", "failed")
            ),
            None,
        ),
        airflow,
        600,
        every=2.0,
    )
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
