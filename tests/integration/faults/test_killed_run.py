"""A run SIGKILLed in the middle of its latency scenario (task timeout, OOM kill, lost worker) and started again:
one published run, no duplicate samples, and no model server left running from the killed attempt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from evals.latency.supervision import process_start_time, register, sweep_leftovers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REQUESTS = 120
WHEN = "2026-11-21T02:00:00+00:00"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _wait(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.1)


def _evals_run(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "evals", "run", "-c", "package:evals-test/tiny-llama", "--suite", "none"]
    command += ["--scenario", "killable", "--logical-date", WHEN]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigkill_mid_scenario_leaves_no_server_and_the_rerun_publishes_once(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "killable.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "killable",
                "version": "1",
                "api": "completions",
                "prompts": {"source": "synthetic", "input_tokens": 16},
                "output": {"max_tokens": 8, "ignore_eos": True},
                "levels": [{"concurrency": 1}],
                "requests_per_level": REQUESTS,
                "warmup_requests": 1,
                "timeout_s": 60,
            }
        )
    )
    cache = tiny_model_dir.parents[2]  # the shared test-model cache: nothing is rebuilt
    registry = cache / "servers" / "running"
    env = {
        **os.environ,
        "EVALS_WAREHOUSE": f"file://{tmp_path / 'warehouse'}",
        "EVALS_CACHE_DIR": str(cache),
        "EVALS_LATENCY_SCENARIO_DIR": str(scenarios),
        "EVALS_LATENCY_BACKEND": "transformers",
    }
    before = {p.name for p in registry.glob("*.json")} if registry.is_dir() else set()
    first = _evals_run(env)
    try:
        _wait(lambda: registry.is_dir() and {p.name for p in registry.glob("*.json")} - before, 180, "a server")
        (entry,) = [p for p in registry.glob("*.json") if p.name not in before]
        server_pid = json.loads(entry.read_text())["pid"]
        time.sleep(3)  # mid-scenario: the server is answering the load generator
        assert _alive(server_pid)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    _wait(lambda: not _alive(server_pid), 30, f"server pid {server_pid} to die with its killed parent")

    second = _evals_run(env)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output.decode(errors="replace")[-3000:]

    from evals.settings import get_settings
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    warehouse = Warehouse(env["EVALS_WAREHOUSE"], get_settings())
    con = connect(warehouse)
    assert con.execute("select count(*), min(status) from runs").fetchone() == (1, "published")
    assert con.execute("select sum(n_requests) from latency").fetchone() == (REQUESTS,)
    samples = con.execute("select count(*), count(distinct request_index) from latency_samples").fetchone()
    assert samples == (REQUESTS, REQUESTS)
    assert not any(_alive(json.loads(p.read_text())["pid"]) for p in registry.glob("*.json") if p.name not in before)


def test_a_leftover_server_of_a_dead_owner_is_stopped_before_a_new_one_starts(tmp_path: Path) -> None:
    # A server that outlived its owner (e.g. it ignored the parent-death signal): a process in its own group.
    leftover = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
        start_new_session=True,
    )
    dead_owner = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_owner.wait()
    registry = tmp_path / "running"
    path = register(registry, leftover.pid, ["vllm", "serve", "x"])
    entry = json.loads(path.read_text())
    entry.update(owner_pid=dead_owner.pid, owner_start=12345)
    path.write_text(json.dumps(entry))
    # A live owner's server (another task on this worker) is not touched.
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    register(registry, mine.pid, ["vllm", "serve", "y"])
    try:
        assert sweep_leftovers(registry, grace_s=1.0) == [leftover.pid]
        assert leftover.wait(timeout=10) == -signal.SIGKILL  # SIGTERM ignored, then the group was killed
        assert mine.poll() is None and process_start_time(mine.pid) is not None
        assert [p.name for p in registry.glob("*.json")] == [f"{mine.pid}.json"]
    finally:
        for process in (leftover, mine):
            process.kill()
            process.wait()
