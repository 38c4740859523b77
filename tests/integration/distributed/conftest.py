"""Fixtures for the CeleryExecutor tests: PostgreSQL, Redis and an Airflow deployment (see ``cluster.py``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.distributed.cluster import Cluster, airflow_env, free_port
from integration.distributed.services import LocalPostgres, Postgres, Unavailable, postgres_server, redis_server
from s3server import S3Server

CELERY_EXTRA = "needs the celery extra: pip install -e '.[celery]'"


@pytest.fixture(scope="module")
def postgres_local() -> Iterator[tuple[Postgres, LocalPostgres | None]]:
    """Airflow's metadata DB and the server holding it (None when reusing ``EVALS_TEST_POSTGRES_URL``)."""
    pytest.importorskip("psycopg2", reason=CELERY_EXTRA)
    try:
        with postgres_server() as found:
            yield found
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def postgres(postgres_local: tuple[Postgres, LocalPostgres | None]) -> Postgres:
    """Airflow's metadata DB: a throwaway PostgreSQL cluster (initdb + postgres) on a free loopback port."""
    return postgres_local[0]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """The Celery broker: ``redis-server`` on a free loopback port, no persistence."""
    pytest.importorskip("redis", reason=CELERY_EXTRA)
    try:
        with redis_server() as url:
            yield url
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def cluster(postgres: Postgres, redis_url: str, s3_server: S3Server) -> Iterator[tuple[Cluster, str]]:
    pytest.importorskip("airflow.providers.celery", reason=CELERY_EXTRA)
    workdir = Path(tempfile.mkdtemp(prefix="evals-celery-"))
    warehouse = f"s3://{s3_server.new_bucket()}/warehouse"
    env = airflow_env(workdir, postgres, redis_url, s3_server, warehouse, free_port())
    cluster = Cluster(workdir, env)
    try:
        yield cluster, warehouse
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
