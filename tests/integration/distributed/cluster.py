"""A CeleryExecutor deployment on loopback, importable by tests and benches: the Airflow processes, each in its own
process group (started, killed and stopped by group), and their configuration (PostgreSQL, Redis: ``services.py``)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from integration.distributed.services import Postgres

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
AIRFLOW = str(Path(sys.executable).parent / "airflow")


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


def process_tree(pid: int) -> list[Any]:
    """``pid`` and every process it started (psutil processes), whatever their process group: Airflow 3 runs each
    task in a process group of its own, and model servers start their own sessions."""
    import psutil

    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s process group and the groups of everything it started (a machine lost at once)."""
    mine = os.getpgid(0)
    groups = {pid}
    for process in process_tree(pid):
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(process.pid))
    for group in groups - {mine}:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def wait_for(what: str, check: Callable[[], Any], timeout: float, *, every: float = 1.0, alive: Any = None) -> Any:
    """Poll ``check`` until it returns something truthy (exceptions count as not yet); ``alive()`` is called each
    round to fail early when a process died."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        try:
            result = check()
        except Exception:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """Airflow processes started by this test, each in its own process group, with a log file each."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.dead: set[str] = set()  # killed on purpose: check_alive() does not count them
        self.workers: set[str] = set()

    def start(self, name: str, *args: str, **extra_env: str) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs[name] = log
        self.dead.discard(name)
        self.processes[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env={**self.env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.workdir,
        )

    def start_worker(self, name: str, queue: str, concurrency: int = 1) -> None:
        """A Celery worker serving ``queue``; it reports ``name`` as ``task_instance.hostname``."""
        self.workers.add(name)
        self.start(
            name,
            "celery",
            "worker",
            "--queues",
            queue,
            "--celery-hostname",
            f"{name}@%h",
            "--concurrency",
            str(concurrency),
            "--pid",
            str(self.workdir / f"{name}.pid"),
            "--skip-serve-logs",
            "--without-mingle",
            "--without-gossip",
            EVALS_TEST_WORKER_NAME=name,
        )

    def kill(self, name: str) -> None:
        """SIGKILL a process, its group and everything it started (a machine lost: the worker, its task processes in
        their own groups, the servers they started)."""
        process = self.processes[name]
        kill_tree(process.pid)
        process.wait(timeout=10)
        self.dead.add(name)

    def run(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.workdir
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if name not in self.dead and process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}\n{self.tails()}")

    def tails(self, chars: int = 2500) -> str:
        parts = []
        for name in self.processes:
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} ---\n{text[-chars:]}")
        for task_log in sorted(self.task_logs()):
            text = task_log.read_text(errors="replace")
            parts.append(f"--- {task_log.relative_to(self.workdir)} ---\n{text[-chars:]}")
        return "\n".join(parts)

    def task_logs(self) -> list[Path]:
        return list((self.workdir / "airflow-home" / "logs").rglob("*.log"))

    def stop(self, grace_s: float = 30.0) -> None:
        """Workers first (they hold tasks), then the scheduler side; each by its process group, SIGTERM then, after
        ``grace_s``, SIGKILL."""
        for name in sorted(self.processes, key=lambda n: n not in self.workers):
            stop_group(self.processes[name], grace_s=grace_s)
        for log in self._logs.values():
            log.close()

    def boot(
        self, postgres: Postgres, dag_id: str, workers: Mapping[str, tuple[str, int]], pools: Mapping[str, int]
    ) -> dict[str, float]:
        """Migrate, size the ``pools`` (name -> slots), start the API server, scheduler, DAG processor and
        ``workers`` (name -> (queue, concurrency)), wait until ``dag_id`` is parsed, unpause it; returns timings."""
        import httpx

        started = time.monotonic()
        self.run("db", "migrate", timeout=300)
        for pool, slots in pools.items():
            self.run("pools", "set", pool, str(slots), f"{pool}: {slots} slot(s)")
        timings = {"migrate+pool": time.monotonic() - started}
        port = self.env["AIRFLOW__API__PORT"]
        self.start("api-server", "api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1")
        self.start("scheduler", "scheduler")
        self.start("dag-processor", "dag-processor")
        for name, (queue, concurrency) in workers.items():
            self.start_worker(name, queue, concurrency)
        health = f"http://127.0.0.1:{port}/api/v2/monitor/health"
        self.wait("the API server", lambda: httpx.get(health, timeout=5).status_code == 200, 180)
        self.wait(
            f"{dag_id} to be parsed",
            lambda: postgres.query("select 1 from serialized_dag where dag_id = %s", dag_id),
            180,
        )
        self.run("dags", "unpause", dag_id)  # only this DAG: the others stay paused
        timings["services up"] = time.monotonic() - started
        return timings

    def wait_for_run(self, postgres: Postgres, dag_id: str, run_id: str, timeout: float) -> str:
        """The DAG run's final state (success or failed)."""

        def finished() -> str | None:
            rows = postgres.query("select state from dag_run where dag_id = %s and run_id = %s", dag_id, run_id)
            return next((s for (s,) in rows if s in ("success", "failed")), None)

        return str(self.wait(f"{dag_id} {run_id} to finish", finished, timeout, every=2.0))

    def wait(self, what: str, check: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
        """:func:`wait_for` failing early when one of this cluster's processes died, with the logs' tails."""
        try:
            return wait_for(what, check, timeout, every=every, alive=self.check_alive)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.tails()}") from None


def airflow_env(
    workdir: Path, postgres: Postgres, redis_url: str, s3: Any, warehouse: str, api_port: int
) -> dict[str, str]:
    """One deployment's configuration, as docker/compose.yaml sets it (no AWS_* variables: S3 via a connection).
    ``s3`` is a :class:`s3server.S3Server` (endpoint, access_key, secret_key)."""
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
        # Workers import GX, lm-eval and pyiceberg once, not in every task process (evals/orchestration/worker.py).
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "evals.orchestration.worker.CELERY_CONFIG",
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
