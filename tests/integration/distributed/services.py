"""The servers a Celery deployment stands on, for tests and benches: PostgreSQL (Airflow's metadata DB and the
Iceberg catalog; restartable on its data) and Redis (the broker), from Debian's packages, on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration.distributed.cluster import free_port, stop_group, wait_for

# A throwaway cluster: no durability, so migrations and task state writes don't wait on fsync.
SPEED_OVER_SAFETY = ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"]
SPEED_OVER_SAFETY += ["-c", "full_page_writes=off", "-c", "max_connections=200"]
INSTALL_HINT = "install them with: apt-get install -y postgresql redis-server"


class Unavailable(RuntimeError):
    """A server binary this deployment needs is not installed (tests skip on it, benches stop)."""


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


class LocalPostgres:
    """A throwaway PostgreSQL cluster (initdb + postgres) on a free loopback port; restartable on the same data."""

    def __init__(self, port: int) -> None:
        bindir = _postgres_bin()
        if bindir is None:
            raise Unavailable(f"PostgreSQL server binaries (initdb, postgres) not found; {INSTALL_HINT}")
        self.bindir, self.port = bindir, port
        # initdb refuses to run as root: run the cluster as Debian's 'postgres' user, in a dir it owns.
        self.user = "postgres" if os.geteuid() == 0 else None
        self.workdir = Path(tempfile.mkdtemp(prefix="evals-pg-", dir="/tmp"))
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(self.workdir, account.pw_uid, account.pw_gid)
        self.data = self.workdir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self._log = open(self.workdir / "postgres.log", "ab")  # noqa: SIM115 - closed in close()
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", "airflow", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            user=self.user,
            cwd=self.workdir,
        )

    def start(self) -> None:
        command = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.workdir)]
        self.process = subprocess.Popen(
            [*command, *SPEED_OVER_SAFETY],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=self.user,
            cwd=self.workdir,
        )
        server = Postgres("127.0.0.1", self.port, "airflow", "postgres")

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited early: {(self.workdir / 'postgres.log').read_text()[-2000:]}")
            server.connect().close()
            return True

        wait_for("PostgreSQL", ready, 60, every=0.2)

    def stop(self, sig: int = signal.SIGINT) -> None:
        """SIGINT: PostgreSQL's "fast" shutdown (SIGKILL for a crash)."""
        if self.process is not None:
            stop_group(self.process, sig=sig)
            self.process = None

    def close(self) -> None:
        self.stop()
        self._log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def postgres_server(database: str = "airflow") -> Iterator[tuple[Postgres, LocalPostgres | None]]:
    """A database ``database`` on a throwaway cluster, or a fresh one on the server of ``EVALS_TEST_POSTGRES_URL``
    (``postgresql://user:pw@host:port/db``; then there is no local server to restart: None)."""
    if url := os.environ.get("EVALS_TEST_POSTGRES_URL"):
        with _reuse_postgres(url) as reused:
            yield reused, None
        return
    local = LocalPostgres(free_port())
    try:
        local.start()
        conn = Postgres("127.0.0.1", local.port, "airflow", "postgres").connect()
        conn.autocommit = True
        conn.cursor().execute(f'CREATE DATABASE "{database}"')
        conn.close()
        yield Postgres("127.0.0.1", local.port, "airflow", database), local
    finally:
        local.close()


@contextlib.contextmanager
def _reuse_postgres(url: str) -> Iterator[Postgres]:
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


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """The Celery broker: ``redis-server`` on a free loopback port, no persistence (or ``EVALS_TEST_REDIS_URL``)."""
    if url := os.environ.get("EVALS_TEST_REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise Unavailable(f"redis-server not found; {INSTALL_HINT}")
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

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited early: {(workdir / 'redis.log').read_text()[-2000:]}")
        return bool(redis.Redis.from_url(url).ping())

    try:
        wait_for("redis-server", ready, 30, every=0.1)
        yield url
    finally:
        stop_group(process)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
