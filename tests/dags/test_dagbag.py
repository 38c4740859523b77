"""DAG integrity: parse cleanly, fast, without heavy imports; retries, tags and GPU routing in place."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
HEAVY = ["torch", "transformers", "lm_eval", "great_expectations", "pandas", "duckdb", "pyarrow", "vllm"]
GPU_TASKS = ("evaluate",)

PARSE_PROBE = """
import json, sys, time
import airflow.sdk  # the unavoidable base cost, measured apart from our DAG file
from airflow.dag_processing.dagbag import DagBag
start = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - start
heavy = [m for m in sys.argv[2].split(",") if m in sys.modules]
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dag_ids),
                  "seconds": elapsed, "heavy": heavy}))
"""


def test_dag_files_exist() -> None:
    assert {p.stem for p in DAG_FILES} >= {"evals_nightly", "evals_manual", "evals_analytics"}


@pytest.mark.timing  # a parse-time bound: alone, not beside another busy worker
@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_parses_fast_without_heavy_imports(dag_file: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(dag_file), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["dags"] == [dag_file.stem]
    assert report["heavy"] == [], f"{dag_file.name} imports heavy modules at parse time: {report['heavy']}"
    assert report["seconds"] < 1.0, f"{dag_file.name} took {report['seconds']:.2f}s to parse"


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag


def test_tags_retries_and_policy(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag in dagbag.dags.values():
        assert "checkpoint-evals" in dag.tags
        for t in dag.tasks:
            assert t.retries >= 1, f"{dag.dag_id}.{t.task_id} has no retries"
            assert t.retry_exponential_backoff
            assert t.retry_delay.total_seconds() == 30, f"{dag.dag_id}.{t.task_id}: the default delay"
            assert t.retry_policy is not None, f"{dag.dag_id}.{t.task_id} has no retry policy"


def test_gpu_tasks_are_routed(dagbag, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    seen = 0
    for dag_id in ("evals_nightly", "evals_manual"):
        for t in dagbag.dags[dag_id].tasks:
            if t.task_id.split(".")[-1] in GPU_TASKS:
                seen += 1
                assert (t.queue, t.pool) == ("gpu", "gpu"), f"{dag_id}.{t.task_id}"
            else:
                assert t.queue != "gpu", f"{dag_id}.{t.task_id} needs no GPU"
    assert seen == 2


def test_terminal_errors_fail_at_once_transient_ones_retry(dagbag) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk import RetryAction

    from evals.errors import CheckpointRejected, StorageUnavailable, ValidationFailed

    policy = dagbag.dags["evals_nightly"].get_task("checkpoint.evaluate").retry_policy
    assert policy.evaluate(CheckpointRejected("pickle"), 1, 3).action == RetryAction.FAIL
    assert policy.evaluate(ValidationFailed("acc > 1"), 1, 3).action == RetryAction.FAIL
    assert policy.evaluate(StorageUnavailable("503"), 1, 3).action == RetryAction.RETRY
    assert policy.evaluate(RuntimeError("?"), 1, 3).action == RetryAction.DEFAULT


def test_nightly_schedule_and_concurrency(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["evals_nightly"]
    assert dag.max_active_runs == 1
    assert not dag.catchup


def test_routing_reads_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from evals.orchestration.routing import Routing

    monkeypatch.setenv("EVALS_GPU_QUEUE", "h100")
    monkeypatch.setenv("EVALS_GPU_POOL", "h100-slots")
    assert Routing.from_settings().gpu_task_kwargs() == {"queue": "h100", "pool": "h100-slots"}


def test_the_retry_delay_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from evals.orchestration.policy import default_args
    from evals.orchestration.routing import Routing

    monkeypatch.setenv("EVALS_TASK_RETRY_DELAY_S", "5")
    routing = Routing.from_settings()
    assert default_args(routing.retries, routing.retry_delay_s)["retry_delay"] == dt.timedelta(seconds=5)


def test_form_offers_exactly_the_registered_backends() -> None:
    from evals.accuracy.backends import available_backends
    from evals.orchestration.params import BACKENDS

    assert sorted(BACKENDS) == sorted(["auto", *available_backends()])
