"""The serving decision end to end on a real Airflow (API server, scheduler, DAG processor, the real nightly DAG).

Production's champion is a hosted API (a simulator that wants a bearer key, priced per token); tonight's three
challengers are simulators whose answers to the smoke suite's arithmetic questions are known question by question
(``--accuracy P --answer-seed S``: see evals/latency/simulator.py):

- ``cheap-twin``: the champion's right answers and a few more (same seed, P 0.85 vs 0.80), cheaper -> ``promote``;
- ``weak``: right on 30 % of the questions (the champion about 75 %) -> ``reject`` on accuracy;
- ``coin``: the champion's accuracy give or take a point, with other questions right (another seed): the paired
  interval straddles the margin -> ``hold``.

The promote waits in Airflow's REST API as a human-in-the-loop task; alice answers it there; the decision records
her, the champion Asset gets an event naming the challenger, and the deployment DAG scheduled on it runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from integration.dags.stack import Airflow, airflow_stack, run_state
from simulators import running_simulator

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[3]
KEY = "sk-champion-5e6f7a8b9c0d1e2f"
MARGIN = 5.0  # accuracy points
# name -> (accuracy, answer seed, TTFT ms, USD per 1M input, per 1M output)
MODELS = {
    "champion-api": (0.80, 1, 30.0, 2.0, 8.0),
    "cheap-twin": (0.85, 1, 15.0, 0.5, 2.0),
    "weak": (0.30, 1, 15.0, 0.5, 2.0),
    "coin": (0.80, 8, 15.0, 0.5, 2.0),
}
EXPECTED = {"cheap-twin": "promote", "weak": "reject", "coin": "hold"}


def true_delta(model: str) -> float:
    """challenger - champion accuracy on the arithmetic task, from the servers' answer rule over the task's data."""
    from evals.latency.simulator_wire import answer_question

    data = REPO / "evals" / "tasks" / "bigbench_smoke" / "data" / "arithmetic_1d_add.test.jsonl"
    questions = [json.loads(line)["input"] for line in data.read_text().splitlines()]

    def accuracy(name: str) -> float:
        p, seed = MODELS[name][:2]
        return sum(bool(answer_question(q, p, seed)[2]) for q in questions) / len(questions)  # type: ignore[index]

    return accuracy(model) - accuracy("champion-api")


@contextmanager
def simulator(accuracy: float, seed: int, ttft_ms: float, *extra: str) -> Iterator[str]:
    answers = ("--accuracy", str(accuracy), "--answer-seed", str(seed), *extra)
    with running_simulator(ttft_ms=ttft_ms, itl_ms=[2.0, 4.0], extra=answers) as url:
        yield url


def serving_config(path: Path) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "champion": "endpoint:champion-api",
                "traffic": {"requests_per_s": 0.5},
                "cost": {"hours_per_month": 730},
                "policy": {
                    "name": "switch-test",
                    "version": "1",
                    "alpha": 0.05,
                    "non_inferiority": {"*": MARGIN},
                    "capacity": True,
                    # 30 requests per level cannot bound a P95 from above: no latency limit in this policy.
                    "latency": {"ttft_p95_ms": None, "e2e_p95_ms": None},
                    "saving": {"basis": "monthly_cost", "min_relative": 0.0},
                },
            }
        )
    )


@pytest.fixture
def night(tmp_path: Path, tiny_model_dir: Path) -> Iterator[tuple[Airflow, dict[str, str]]]:
    with ExitStack() as stack:
        entries = []
        for name, (accuracy, seed, ttft_ms, price_in, price_out) in MODELS.items():
            hosted = name == "champion-api"
            url = stack.enter_context(simulator(accuracy, seed, ttft_ms, *(("--api-key", KEY) if hosted else ())))
            entry: dict[str, Any] = {
                "source": "endpoint",
                "model": name,
                "base_url": f"{url}/v1",
                "price_input_per_1m": price_in,
                "price_output_per_1m": price_out,
                "tokenizer": str(tiny_model_dir),  # the smoke scenario's synthetic prompts are counted with it
            }
            if hosted:
                entry["api_key_env"] = "CHAMPION_KEY"
            entries.append(entry)
        (tmp_path / "watchlist.yaml").write_text(yaml.safe_dump({"sources": entries}))
        serving_config(tmp_path / "serving.yaml")
        dags = tmp_path / "dags"
        dags.mkdir()
        for dag_file in ("evals_nightly.py", "evals_deploy_champion.py"):
            shutil.copy(REPO / "dags" / dag_file, dags)
        env = {
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # the night starts when the test unpauses it
            "EVALS_WAREHOUSE": f"file://{tmp_path / 'warehouse'}",
            "EVALS_WATCHLIST": str(tmp_path / "watchlist.yaml"),
            "EVALS_SERVING": str(tmp_path / "serving.yaml"),
            "EVALS_CACHE_DIR": str(tmp_path / "cache"),
            "EVALS_MANIFEST_CACHE_DIR": str(tmp_path / "manifest-cache"),
            "CHAMPION_KEY": KEY,
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
        }
        airflow = stack.enter_context(airflow_stack(tmp_path, dags, extra_env=env, pools={"gpu": 2}))
        yield airflow, env


def test_hosted_champion_against_three_challengers_promote_reject_hold_and_an_approval_through_the_api(
    night: tuple[Airflow, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    airflow, env = night
    # Unpaused, the nightly DAG schedules its latest night at once (catchup off), with its defaults: suite and
    # scenario smoke.
    for dag_id in ("evals_deploy_champion", "evals_nightly"):
        airflow.wait(f"DAG {dag_id}", lambda d=dag_id: airflow.api("GET", f"/dags/{d}"), timeout_s=120)  # type: ignore[misc]
        airflow.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pending() -> list[dict[str, Any]]:
        details = airflow.api("GET", "/dags/evals_nightly/dagRuns/~/hitlDetails", params={"response_received": False})
        return [d for d in details["hitl_details"] if d["task_instance"]["state"] == "awaiting_input"]

    (detail,) = airflow.wait("the promote's approval", pending, timeout_s=600)
    # Airflow 3.3.2: answer only once the scheduler has seen the task park (see test_approval.py).
    parked = "TaskInstance Finished: dag_id=evals_nightly, task_id=approve"
    scheduler_log = airflow.home / "scheduler.log"
    airflow.wait("the scheduler to see the park", lambda: parked in scheduler_log.read_text(errors="replace"))
    assert detail["subject"].startswith("Promote cheap-twin@")
    assert detail["body"].startswith("**PROMOTE**: `cheap-twin@") and "`endpoint:champion-api`" in detail["body"]
    assert "[Full report](" in detail["body"]

    ti = detail["task_instance"]
    run_id = ti["dag_run_id"]
    assert [r["dag_run_id"] for r in airflow.api("GET", "/dags/evals_nightly/dagRuns")["dag_runs"]] == [run_id]
    path = f"/dags/evals_nightly/dagRuns/{quote(run_id)}/taskInstances/{ti['task_id']}/{ti['map_index']}/hitlDetails"
    answer = {"chosen_options": ["Approve"], "params_input": {"reason": "as accurate, a quarter of the price"}}
    assert airflow.api("PATCH", path, json=answer)["responded_by"]["name"] == "alice"
    airflow.wait("the night to finish", lambda: run_state(airflow, "evals_nightly", run_id) == "success", 300)

    # The decisions, as stored: one per challenger, each with the criterion that decided it.
    from evals.warehouse import Warehouse

    for name in ("EVALS_WAREHOUSE", "EVALS_CACHE_DIR", "EVALS_MANIFEST_CACHE_DIR", "EVALS_SERVING"):
        monkeypatch.setenv(name, env[name])
    rows = {r["model_id"]: r for r in Warehouse.from_settings().read_table("decisions").to_pylist()}
    assert {model: row["outcome"] for model, row in rows.items()} == EXPECTED, {m: r["reason"] for m, r in rows.items()}
    criteria = {model: {c["name"]: c for c in json.loads(row["criteria"])} for model, row in rows.items()}
    accuracy = {
        model: next(c for name, c in found.items() if name.startswith("accuracy")) for model, found in criteria.items()
    }
    for model, criterion in accuracy.items():  # fractions; the limit is -margin
        assert criterion["limit"] == pytest.approx(-MARGIN / 100)
        assert criterion["estimate"] == pytest.approx(true_delta(model)), model
    assert accuracy["weak"]["status"] == "fail" and accuracy["weak"]["ci_high"] < -MARGIN / 100
    assert accuracy["coin"]["status"] == "inconclusive"
    assert accuracy["coin"]["ci_low"] < -MARGIN / 100 < accuracy["coin"]["ci_high"]
    assert accuracy["cheap-twin"]["status"] == "pass" and accuracy["cheap-twin"]["ci_low"] > -MARGIN / 100
    promoted = rows["cheap-twin"]
    assert (promoted["approval_outcome"], promoted["approver"]) == ("approved", "alice")
    assert promoted["approval_reason"] == "as accurate, a quarter of the price"
    assert promoted["challenger_monthly_usd"] < promoted["champion_monthly_usd"]
    assert all(rows[m]["approval_outcome"] in (None, "pending") for m in ("weak", "coin"))

    # The Asset names the new champion; the deployment DAG scheduled on it ran with it.
    events = airflow.api("GET", "/assets/events", params={"source_dag_id": "evals_nightly"})["asset_events"]
    (event,) = [e for e in events if e["uri"] == "x-evals://serving/champion"]  # the night also announces its runs
    assert event["extra"]["champion"].startswith("endpoint:cheap-twin@") and event["extra"]["approver"] == "alice"
    deploy = airflow.wait(
        "the deployment DAG",
        lambda: [
            r for r in airflow.api("GET", "/dags/evals_deploy_champion/dagRuns")["dag_runs"] if r["state"] == "success"
        ],
    )
    assert len(deploy) == 1

    # The hosted champion's key reached its server (its runs published) and nothing stored it.
    stored = b"".join(p.read_bytes() for p in Path(env["EVALS_WAREHOUSE"][7:]).rglob("*") if p.is_file())
    assert KEY.encode() not in stored
