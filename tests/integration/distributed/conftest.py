"""A CeleryExecutor deployment on loopback: PostgreSQL and Redis from Debian's packages, Airflow processes; all
stopped by process group."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import S3Server, free_port

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
AIRFLOW = str(Path(sys.executable).parent / "airflow")

# A throwaway cluster: no durability, so migrations and task state writes don't wait on fsync.
SPEED_OVER_SAFETY = ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"]
SPEED_OVER_SAFETY += ["-c", "full_page_writes=off", "-c", "max_connections=200"]
INSTALL_HINT = "install them with: apt-get install -y postgresql redis-server"


def stop_group(process: subprocess.Popen[bytes], *, grace_s: float = 20.0, sig: int = signal.SIGTERM) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it forked (its process group)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return  # the whole group is gone already
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of the group outlived the leader or the grace period
    process.wait(timeout=10)


def _postgres_bin() -> Path | None:
    """The server binaries of the newest PostgreSQL that Debian installed (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    database: str
    password: str = ""

    def url(self, driver: str = "postgresql+psycopg2") -> str:
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"{driver}://{auth}@{self.host}:{self.port}/{self.database}"

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def connect(self):  # type: ignore[no-untyped-def]
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password or None, dbname=self.database
        )


def _reuse_postgres(url: str) -> Iterator[Postgres]:
    """A fresh database on a running server (``EVALS_TEST_POSTGRES_URL=postgresql://user:pw@host:port/db``)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    admin = Postgres(
        parsed.hostname or "127.0.0.1",
        parsed.port or 5432,
        parsed.username or "postgres",
        parsed.path.lstrip("/") or "postgres",
        parsed.password or "",
    )
    name = f"evals_celery_{uuid.uuid4().hex[:10]}"
    conn = admin.connect()
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield Postgres(admin.host, admin.port, admin.user, name, admin.password)
    finally:
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """Airflow's metadata DB: a throwaway PostgreSQL cluster (initdb + postgres) on a free loopback port."""
    pytest.importorskip("psycopg2", reason="needs the celery extra: pip install -e '.[celery]'")
    if url := os.environ.get("EVALS_TEST_POSTGRES_URL"):
        yield from _reuse_postgres(url)
        return
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, postgres) not found; {INSTALL_HINT}")
    # initdb refuses to run as root: run the cluster as Debian's 'postgres' user, in a dir it owns.
    user = "postgres" if os.geteuid() == 0 else None
    workdir = Path(tempfile.mkdtemp(prefix="evals-pg-", dir="/tmp"))
    if user:
        account = pwd.getpwnam(user)
        os.chown(workdir, account.pw_uid, account.pw_gid)
    data, port = workdir / "data", free_port()
    log = open(workdir / "postgres.log", "wb")  # noqa: SIM115 - closed below
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        stdout=log,
        stderr=subprocess.STDOUT,
        user=user,
        cwd=workdir,
    )
    process = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir), *SPEED_OVER_SAFETY],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        user=user,
        cwd=workdir,
    )
    server = Postgres("127.0.0.1", port, "airflow", "postgres")
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"postgres exited early: {(workdir / 'postgres.log').read_text()[-2000:]}")
            try:
                conn = server.connect()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            conn.autocommit = True
            conn.cursor().execute("CREATE DATABASE airflow")
            conn.close()
            break
        yield Postgres("127.0.0.1", port, "airflow", "airflow")
    finally:
        stop_group(process, sig=signal.SIGINT)  # SIGINT: PostgreSQL's "fast" shutdown
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """The Celery broker: ``redis-server`` on a free loopback port, no persistence."""
    pytest.importorskip("redis", reason="needs the celery extra: pip install -e '.[celery]'")
    if url := os.environ.get("EVALS_TEST_REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(f"redis-server not found; {INSTALL_HINT}")
    import redis

    workdir = Path(tempfile.mkdtemp(prefix="evals-redis-"))
    port = free_port()
    log = open(workdir / "redis.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited early: {(workdir / 'redis.log').read_text()[-2000:]}")
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        stop_group(process)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


class Cluster:
    """Airflow processes started by this test, each in its own process group, with a log file each."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    def start(self, name: str, *args: str, **extra_env: str) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs[name] = log
        self.processes[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env={**self.env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.workdir,
        )

    def run(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.workdir
        )
        assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}\n{self.tails()}"

    def tails(self, chars: int = 2500) -> str:
        parts = []
        for name in self.processes:
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} ---\n{text[-chars:]}")
        for task_log in sorted((self.workdir / "airflow-home" / "logs").rglob("*.log")):
            text = task_log.read_text(errors="replace")
            parts.append(f"--- {task_log.relative_to(self.workdir)} ---\n{text[-chars:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        # Workers first (they hold tasks), then the scheduler side; each by its process group.
        for name in sorted(self.processes, key=lambda n: not n.endswith("worker")):
            stop_group(self.processes[name], grace_s=30)
        for log in self._logs.values():
            log.close()


def airflow_env(
    workdir: Path, postgres: Postgres, redis_url: str, s3: S3Server, warehouse: str, api_port: int
) -> dict[str, str]:
    """One deployment's configuration, as docker/compose.yaml sets it (no AWS_* variables: S3 via a connection)."""
    from cryptography.fernet import Fernet

    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EVALS_", "AWS_"))}
    s3_conn = {
        "conn_type": "aws",
        "login": s3.access_key,
        "password": s3.secret_key,
        "extra": {"endpoint_url": s3.endpoint, "region_name": "us-east-1"},
    }
    return {
        **keep,
        "AIRFLOW_HOME": str(workdir / "airflow-home"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url(),
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.url(),
        "AIRFLOW__CELERY__OPERATION_TIMEOUT": "15",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "worker_identity.hostname",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "600",
        "AIRFLOW_CONN_EVALS_S3": json.dumps(s3_conn),
        "PYTHONPATH": str(HERE),  # worker_identity
        "EVALS_WAREHOUSE": warehouse,
        # The Iceberg catalog on the same PostgreSQL (compose gives it its own database on the same server).
        "EVALS_CATALOG_URI": postgres.url(),
        "EVALS_S3_CONN_ID": "evals_s3",
        "EVALS_GPU_QUEUE": "gpu",
        "EVALS_GPU_POOL": "gpu",
        # The per-machine test cache keeps the tiny model between sessions (shared by both workers, as a volume is).
        "EVALS_CACHE_DIR": str(Path.home() / ".cache" / "checkpoint-evals" / "test-cache"),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


@pytest.fixture
def cluster(postgres: Postgres, redis_url: str, s3_server: S3Server) -> Iterator[tuple[Cluster, str]]:
    pytest.importorskip("airflow.providers.celery", reason="needs the celery extra: pip install -e '.[celery]'")
    workdir = Path(tempfile.mkdtemp(prefix="evals-celery-"))
    warehouse = f"s3://{s3_server.new_bucket()}/warehouse"
    env = airflow_env(workdir, postgres, redis_url, s3_server, warehouse, free_port())
    cluster = Cluster(workdir, env)
    try:
        yield cluster, warehouse
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
