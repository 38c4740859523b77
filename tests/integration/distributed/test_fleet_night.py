"""A fleet night, scaled down: the nightly DAG over simulated hosted checkpoints on the Celery deployment (one CPU
worker, two GPU workers behind a 2-slot ``gpu`` pool, the Iceberg catalog on PostgreSQL, the warehouse on SeaweedFS),
with every fault of ``bench/fleet_night.py`` mid-night: one GPU worker SIGKILLed (its whole process group) while it
holds an evaluation, then the scheduler SIGKILLed and started again, PostgreSQL (Airflow's metadata DB and the
Iceberg catalog) restarted, and SeaweedFS restarted, each while evaluations and publishes are under way.

Every checkpoint must be published exactly once (one ``runs`` row in the raw table, status published, the planned
rows in every table: counts from the suite and scenario definitions), the killed worker's evaluation must have
finished on the other worker, and each run's accuracy must equal what its family's simulator recorded answering
right. ``bench/fleet_night.py`` runs the same night at 200 checkpoints and prints the measurements.
"""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING

import pytest
from integration.distributed.fleet import (
    DAG_ID,
    GPU_WORKERS,
    RESTARTABLE,
    FleetNight,
    Shape,
    scratch_dir,
    simulators,
)
from integration.distributed.measure import attempts, published, served
from s3server import SeaweedFS

if TYPE_CHECKING:
    from integration.distributed.services import LocalPostgres, Postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

# Sized for make test (about 3 minutes on 2 cores: 190 s measured on a quiet machine, 276 s under load): the stack's
# start (40-70 s), the plan, two evaluations per GPU worker, the killed one's retry (heartbeat timeout 20 s + the
# retry delay, 5 s here), the last publish and the report.
N = 4
SHAPE = Shape(limit=10, concurrency=(1, 2), requests_per_level=5)
HEARTBEAT_TIMEOUT_S = 20
ORPHAN_CHECK_S = 10  # the restarted scheduler adopts the killed worker's task 30-40 s after the restart
RETRY_DELAY_S = 5.0
KILLED, SURVIVOR = GPU_WORKERS


def test_fleet_night_publishes_every_checkpoint_once_through_every_fault(
    postgres_local: tuple[Postgres, LocalPostgres | None], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("airflow.providers.celery", reason="needs the celery extra: pip install -e '.[celery]'")
    postgres, local_postgres = postgres_local
    workdir = scratch_dir("evals-fleet-")
    started = time.monotonic()
    weed = SeaweedFS(workdir)  # this night's own object store: a fault restarts it
    try:
        with simulators(workdir) as urls:
            warehouse = f"s3://{weed.server.new_bucket()}/warehouse"
            night = FleetNight(
                workdir,
                postgres,
                N,
                SHAPE,
                heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
                retry_delay_s=RETRY_DELAY_S,
                orphan_check_s=ORPHAN_CHECK_S,
            )
            cluster = night.configure(redis_url, weed.server, warehouse, urls)
            try:
                timings = night.boot()
                night.trigger()
                held = night.kill_gpu_worker_while_busy(KILLED, after_done=0, timeout=400)
                timings["killed at"] = time.monotonic() - started
                # The other faults while the survivor evaluates and the CPU worker publishes (PostgreSQL only when
                # it is ours: not EVALS_TEST_POSTGRES_URL's server).
                for service in RESTARTABLE:
                    night.restart(service, local_postgres, weed)
                    timings[f"{service} restarted"] = time.monotonic() - started
                state = night.wait(600)
                timings["night done"] = time.monotonic() - started
            finally:
                cluster.stop(grace_s=5)  # the night is over (or failed): nothing to wait for
            timings["stopped"] = time.monotonic() - started
            truth = {family: served(url) for family, url in urls.items()}
        assert state == "success", cluster.tails()

        # The killed worker's evaluation was tried there first and finished on the survivor.
        tries = attempts(postgres, DAG_ID, night.run_id)
        for index in held:
            mine = [a for a in tries if a.task_id == "checkpoint.evaluate" and a.map_index == index]
            mine.sort(key=lambda a: a.try_number)
            assert mine[0].hostname == KILLED and mine[0].state != "success", mine
            assert (mine[-1].hostname, mine[-1].state) == (SURVIVOR, "success"), mine
        assert {a.hostname for a in tries if a.task_id == "checkpoint.evaluate" and a.state == "success"} <= {
            *GPU_WORKERS
        }

        # The test process reads the warehouse with plain AWS credentials (the cluster used the Airflow connection).
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", weed.server.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", weed.server.secret_key)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("EVALS_S3_ENDPOINT", weed.server.endpoint)
        monkeypatch.setenv("EVALS_CATALOG_URI", postgres.url())
        monkeypatch.setenv("EVALS_CACHE_DIR", str(workdir / "reader-cache"))
        from evals.warehouse import Warehouse

        found = published(Warehouse(warehouse), night.families, SHAPE.planned_rows())
        assert (found.missing, found.duplicated, found.wrong_rows) == ([], {}, [])
        assert found.published_once == N and found.exactly_once
        assert found.rows == {table: N * rows for table, rows in SHAPE.planned_rows().items()}
        timings["counted"] = time.monotonic() - started
        print("timings (s):", {k: round(v, 1) for k, v in timings.items()})

        # The simulators' own record: every question of every checkpoint asked (a retried evaluation may ask
        # again), and each run's score is its family's share of right answers on those questions.
        questions, streamed = SHAPE.planned_requests()
        for family, record in truth.items():
            members = [m for m, f in night.families.items() if f == family]
            assert record.distinct_questions == SHAPE.limit
            assert record.questions >= len(members) * questions and record.streamed >= len(members) * streamed
            assert all(found.accuracy[m] == pytest.approx(record.accuracy) for m in members), family
    finally:
        weed.stop()
        shutil.rmtree(workdir, ignore_errors=True)
