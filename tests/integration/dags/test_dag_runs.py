"""The DAGs run for real (``dag.test()`` against a migrated Airflow DB) on a tiny checkpoint."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from evals.warehouse import Warehouse
from evals.warehouse.views import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
TINY = "package:evals-test/tiny-llama"


@pytest.fixture
def evals_env(airflow_db: Path, warehouse_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    # A per-machine cache keeps the tiny model and lm-eval's request cache between test sessions.
    monkeypatch.setenv("EVALS_CACHE_DIR", str(Path.home() / ".cache" / "checkpoint-evals" / "test-cache"))
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text("sources:\n  - source: package\n    model: tiny-llama\n")
    monkeypatch.setenv("EVALS_WATCHLIST", str(watchlist))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the model server and the load generator share 2 cores
    return warehouse_uri


def load_dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def counts(uri: str) -> dict[str, int]:
    con = connect(Warehouse(uri))
    tables = ("runs", "accuracy", "latency", "latency_samples", "all_runs")
    return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def states(dag_run: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for ti in dag_run.get_task_instances():
        found.setdefault(ti.task_id, []).append(str(ti.state))
    return found


def make_corrupt_checkpoint(root: Path) -> Path:
    """A checkpoint whose weights are garbage: materializes (content hash) but cannot load."""
    directory = root / "broken-model"
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (directory / "model.safetensors").write_bytes(b"\x00not a safetensors file" * 64)
    return directory


def test_manual_dag_publishes_isolates_failures_and_reruns_idempotently(evals_env: str, tmp_path: Path) -> None:
    dag = load_dag("evals_manual")
    broken = make_corrupt_checkpoint(tmp_path / "checkpoints")
    conf = {"checkpoints": [TINY, str(broken)], "suite": "smoke", "scenario": "smoke", "limit": 4}
    when = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)

    run = dag.test(logical_date=when, run_conf=conf)
    seen = states(run)
    assert str(run.state) == "failed"  # the broken checkpoint shows in the DAG run...
    assert sorted(seen["checkpoint.publish"]) == ["success", "upstream_failed"]  # ...but did not stop the good one
    assert seen["compare_and_report"] == ["success"]

    con = connect(Warehouse(evals_env))
    statuses = dict(con.execute("select model_id, status from all_runs").fetchall())
    assert statuses == {"evals-test/tiny-llama": "published", "broken-model": "failed"}
    error = con.execute("select error from all_runs where status = 'failed'").fetchone()
    assert error is not None and "safetensors" in error[0].lower()
    first = counts(evals_env)
    assert first["accuracy"] > 0 and first["latency"] > 0 and first["latency_samples"] > 0
    assert first["runs"] == 1

    rerun = dag.test(logical_date=when, run_conf=conf)  # the same logical date again: same keys
    assert str(rerun.state) == "failed"
    assert counts(evals_env) == first


def test_manual_dag_refuses_bad_params(airflow_db: Path) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    dag = load_dag("evals_manual")
    with pytest.raises(ParamValidationError):
        dag.test(run_conf={"checkpoints": [], "suite": "smoke"})
    with pytest.raises(ParamValidationError):
        dag.test(run_conf={"checkpoints": [TINY], "suite": "no-such-suite"})
    with pytest.raises(ParamValidationError):
        dag.test(run_conf={"checkpoints": [TINY], "endpoint": "ftp://x"})


def test_nightly_dag_discovers_evaluates_and_emits_the_asset(evals_env: str) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    dag = load_dag("evals_nightly")
    when = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)
    run = dag.test(logical_date=when)
    assert str(run.state) == "success", states(run)
    result = counts(evals_env)
    assert result["runs"] == 1 and result["accuracy"] > 0 and result["latency_samples"] > 0
    con = connect(Warehouse(evals_env))
    assert con.execute("select status, dag_id from runs").fetchall() == [("published", "evals_nightly")]
    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_dag_id == "evals_nightly").all()
    assert any(e.source_run_id == run.run_id for e in events)

    # Nothing new the next night: the runs table is the watermark.
    again = dag.test(logical_date=when + dt.timedelta(days=1))
    assert str(again.state) == "success"
    assert counts(evals_env)["runs"] == 1

    # The analytics DAG (scheduled on that Asset): compaction leaves the results as they were; report refreshed.
    before = counts(evals_env)
    analytics = load_dag("evals_analytics").test(logical_date=when + dt.timedelta(days=30))
    assert str(analytics.state) == "success", states(analytics)
    assert counts(evals_env) == before
    assert Warehouse(evals_env).storage.exists("_reports/report.html")
