"""A throwaway Airflow on loopback for the DAG tests: SQLite, LocalExecutor, API server, scheduler and DAG processor,
each process in its own group; a REST client logged in as "alice" (admin)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import free_port

AIRFLOW = str(Path(sys.executable).parent / "airflow")


class Airflow:
    """A throwaway deployment: SQLite, LocalExecutor; each process in its own group, stopped by its group id."""

    def __init__(self, home: Path, env: dict[str, str], url: str) -> None:
        self.home, self.env, self.url = home, env, url
        self.processes: list[subprocess.Popen[bytes]] = []
        self.headers: dict[str, str] = {}

    def start(self, *args: str) -> None:
        log = open(self.home / f"{args[0]}.log", "wb")  # noqa: SIM115 - the child holds it; closed on exit
        self.processes.append(
            subprocess.Popen(
                [AIRFLOW, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def stop(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass

    def logs(self) -> str:
        parts = [f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.home.glob("*.log"))]
        for task_log in sorted((self.home / "logs").rglob("*.log")):
            parts.append(f"--- {task_log.relative_to(self.home)} ---\n{task_log.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(3):
            response = httpx.request(method, f"{self.url}/api/v2{path}", headers=self.headers, timeout=30, **kwargs)
            # A read the API server failed (SQLite busy under load) is asked again; a write is never repeated.
            if method != "GET" or response.status_code < 500 or attempt == 2:
                break
            time.sleep(1.0)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def wait(self, what: str, probe: Callable[[], Any], timeout_s: float = 60) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for process in self.processes:
                assert process.poll() is None, f"{process.args} exited\n{self.logs()}"
            try:
                if found := probe():
                    return found
            except (httpx.HTTPError, AssertionError):
                pass
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}\n{self.logs()}")


@contextmanager
def airflow_stack(
    tmp_path: Path, dags: Path, *, extra_env: dict[str, str] | None = None, pools: dict[str, int] | None = None
) -> Iterator[Airflow]:
    """Airflow serving the DAG files of ``dags``, with ``extra_env`` (no AIRFLOW_*/EVALS_* of the caller's)."""
    home = tmp_path / "airflow"
    home.mkdir()
    port = free_port()
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EVALS_"))}
    env = {
        **keep,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "alice:admin",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "OMP_NUM_THREADS": "1",
        **(extra_env or {}),
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=180)
    for pool, slots in (pools or {}).items():
        subprocess.run([AIRFLOW, "pools", "set", pool, str(slots), pool], env=env, check=True, capture_output=True)
    cluster = Airflow(home, env, f"http://127.0.0.1:{port}")
    try:
        cluster.start("api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        cluster.start("scheduler")
        cluster.start("dag-processor")
        passwords = home / "simple_auth_manager_passwords.json.generated"
        cluster.wait("the API server", lambda: passwords.exists() and httpx.get(f"{cluster.url}/api/v2/monitor/health"))
        login = {"username": "alice", "password": json.loads(passwords.read_text())["alice"]}
        token = httpx.post(f"{cluster.url}/auth/token", json=login, timeout=30).json()["access_token"]
        cluster.headers = {"Authorization": f"Bearer {token}"}
        yield cluster
    finally:
        cluster.stop()


def run_state(cluster: Airflow, dag_id: str, run_id: str) -> str:
    return str(cluster.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])
