"""Publishing under faults, on a real SeaweedFS: the object store stops in the middle of a publish and comes back
(the retry publishes exactly once; nothing half-written is visible meanwhile), and two processes publish the same
run id at the same time (one copy)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from integration.faults.outage import outage_after_the_first_table
from s3server import S3Server, launch_weed, stop_weed, wait_for_s3
from unit.validation.validation_cases import EXPECTED, valid_run

from evals.errors import EvalsError
from evals.settings import get_settings
from evals.validation import validate_and_write
from evals.warehouse import Warehouse
from evals.warehouse.views import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _published(warehouse: Warehouse) -> dict[str, Any]:
    con = connect(warehouse)
    return {
        table: con.execute(f"select count(*) from {table}").fetchone()[0]
        for table in ("runs", "accuracy", "latency", "latency_samples")
    }


def test_the_object_store_stops_mid_publish_and_the_retry_publishes_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="weed-outage-"))
    sockets = Path(tempfile.mkdtemp(prefix="wo-", dir="/tmp"))
    port = free_port()
    server = S3Server(f"http://127.0.0.1:{port}", "evals", "evals-secret")
    process = launch_weed(workdir, sockets, port)
    try:
        wait_for_s3(server, process, workdir)
        for name, value in (("AWS_ACCESS_KEY_ID", "evals"), ("AWS_SECRET_ACCESS_KEY", "evals-secret")):
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("EVALS_S3_ENDPOINT", server.endpoint)
        monkeypatch.setenv("EVALS_CATALOG_URI", f"sqlite:///{workdir / 'catalog.db'}")
        uri = f"s3://{server.new_bucket()}/warehouse"
        warehouse = Warehouse(uri, get_settings())
        record, tables = valid_run()

        with (
            outage_after_the_first_table(monkeypatch, lambda: stop_weed(process)) as stopped,
            pytest.raises(EvalsError) as failed,
        ):
            validate_and_write(record, tables, expected=EXPECTED, warehouse=warehouse)
        assert failed.value.retryable, f"an unreachable store must be retried, got {failed.value!r}"
        assert stopped, "the outage never happened"

        process = launch_weed(workdir, sockets, port)  # the store comes back, same data
        wait_for_s3(server, process, workdir)
        reader = Warehouse(uri, get_settings())
        assert _published(reader) == {"runs": 0, "accuracy": 0, "latency": 0, "latency_samples": 0}

        validate_and_write(record, tables, expected=EXPECTED, warehouse=Warehouse(uri, get_settings()))
        assert _published(Warehouse(uri, get_settings())) == {
            "runs": 1,
            "accuracy": len(tables["accuracy"]),
            "latency": len(tables["latency"]),
            "latency_samples": len(tables["latency_samples"]),
        }
    finally:
        stop_weed(process)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(sockets, ignore_errors=True)


_PUBLISHER = """
import json, sys
from unit.validation.validation_cases import EXPECTED, valid_run
from evals.validation import validate_and_write
from evals.warehouse import Warehouse
record, tables = valid_run()
print(validate_and_write(record, tables, expected=EXPECTED, warehouse=Warehouse(sys.argv[1])).run_id)
"""


def test_two_processes_publishing_the_same_run_at_once_leave_one_copy(warehouse_uri: str, tmp_path: Path) -> None:
    tests_dir = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests_dir), os.environ.get("PYTHONPATH", "")])}
    publishers = [
        subprocess.Popen(
            [sys.executable, "-c", _PUBLISHER, warehouse_uri],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in publishers]
    for process, (_, err) in zip(publishers, outputs, strict=True):
        assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    record, tables = valid_run()
    assert {out.decode().strip() for out, _ in outputs} == {record.run_id}
    warehouse = Warehouse(warehouse_uri, get_settings())
    assert _published(warehouse) == {
        "runs": 1,
        "accuracy": len(tables["accuracy"]),
        "latency": len(tables["latency"]),
        "latency_samples": len(tables["latency_samples"]),
    }
