"""A hosted model (an ``endpoint`` ref) evaluated end to end against the simulator started with ``--api-key``:
materialized without weights, latency through our load generator with the bearer key, cost from the price list,
multiple-choice tasks skipped and named, a wrong key a terminal error; the key in no stored row, log or XCom."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from simulators import running_simulator
from typer.testing import CliRunner

pytestmark = pytest.mark.integration
KEY = "sk-sim-hosted-9f8e7d6c5b4a3210"
PRICE_IN, PRICE_OUT = 1.0, 4.0


@contextmanager
def hosted_simulator(*extra: str) -> Iterator[str]:
    """The simulator as a hosted API wanting KEY as a bearer token."""
    # Gaps of a few ms: at 1-2 ms a loaded client reads several tokens in one read (TPOT 0, which the gate refuses).
    with running_simulator(ttft_ms=5.0, itl_ms=[4.0, 6.0], extra=("--api-key", KEY, *extra)) as url:
        yield url


@pytest.fixture
def hosted_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A watch-list declaring the simulator as a priced endpoint, a warehouse, a cache and a small scenario."""
    # It answers the smoke suite's arithmetic questions, 70 % of them correctly (which ones: seed 3).
    with hosted_simulator("--accuracy", "0.7", "--answer-seed", "3") as url:
        watchlist = tmp_path / "watchlist.yaml"
        entry = {
            "source": "endpoint",
            "model": "simulator",
            "base_url": f"{url}/v1",
            "price_input_per_1m": PRICE_IN,
            "price_output_per_1m": PRICE_OUT,
            "api_key_env": "SIM_HOSTED_KEY",
        }
        watchlist.write_text(yaml.safe_dump({"sources": [entry]}))
        (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"prompt": f"hello {i}"}) + "\n" for i in range(6)))
        scenario = tmp_path / "hosted.yaml"
        scenario.write_text(
            yaml.safe_dump(
                {
                    "name": "hosted-test",
                    "version": "1",
                    "api": "chat",
                    "prompts": {"source": "jsonl", "path": "prompts.jsonl"},
                    "output": {"max_tokens": 4},
                    "levels": [{"concurrency": 1}, {"concurrency": 2}],
                    "requests_per_level": 10,
                    "warmup_requests": 1,
                    "timeout_s": 10,
                    "slo": {"ttft_p95_ms": 1000},
                    "gpu_hour_usd": 2.0,
                }
            )
        )
        monkeypatch.setenv("SIM_HOSTED_KEY", KEY)
        monkeypatch.setenv("EVALS_WATCHLIST", str(watchlist))
        monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'warehouse'}")
        monkeypatch.setenv("EVALS_MANIFEST_CACHE_DIR", str(tmp_path / "manifest-cache"))
        monkeypatch.setenv("EVALS_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.delenv("EVALS_SERVING", raising=False)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        yield {"url": url, "scenario": str(scenario), "tmp": tmp_path}


def _all_published_text() -> str:
    """Every row of every table in every area, as text (what a leak would be stored in)."""
    from evals.schemas import TABLES
    from evals.warehouse import Warehouse

    warehouse = Warehouse.from_settings()
    texts = []
    for area in ("published", "quarantine", "staging"):
        for table in TABLES:
            try:
                rows = warehouse.read_table(table, area=area).to_pylist()
            except Exception:  # an area without that table
                continue
            texts.append(json.dumps(rows, default=str))
    return "\n".join(texts)


def _files_text(root: Path) -> bytes:
    return b"".join(path.read_bytes() for path in root.rglob("*") if path.is_file())


def test_endpoint_run_publishes_priced_latency_and_never_stores_or_logs_the_key(
    hosted_env: dict[str, Any], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from evals.pipeline.publish import run_context
    from evals.pipeline.steps import evaluate_step, materialize_step, plan_step, publish_step
    from evals.warehouse import Warehouse

    caplog.set_level(logging.DEBUG)
    context = run_context()
    params = {"checkpoints": ["endpoint:simulator"], "suite": "none", "scenario": hosted_env["scenario"]}
    xcoms: list[Any] = []
    (item,) = plan_step("manual", params, context)
    xcoms.append(item)
    materialized = materialize_step(item, context)
    xcoms.append(materialized)
    path = Path(materialized["path"])
    assert [p.name for p in path.iterdir() if not p.name.startswith(".")] == ["endpoint.json"]  # no weights
    evaluated = evaluate_step(materialized, context)
    xcoms.append(evaluated)
    published = publish_step(evaluated)
    xcoms.append(published)
    assert published["status"] == "published"

    warehouse = Warehouse.from_settings()
    run = warehouse.find_run(published["run_id"])
    assert run is not None and run.source == "endpoint" and run.backend == "endpoint"
    assert run.config is not None and run.config["endpoint"]["price_output_per_1m"] == PRICE_OUT
    latency = warehouse.read_table("latency").to_pylist()
    assert len(latency) == 2 and all(row["n_failed"] == 0 for row in latency)  # the key went with every request
    for row in latency:
        assert row["gpu_hour_usd"] is None and row["gpu_count"] is None
        # (input x input price + output x output price) / output: above the output price, since prompts cost too
        assert PRICE_OUT < row["usd_per_1m_output_tokens"] < PRICE_OUT + PRICE_IN * 10

    stored = _all_published_text()
    assert "hosted-test" in stored and "simulator" in stored  # sanity: the rows are in the text searched
    assert KEY not in stored
    assert KEY.encode() not in _files_text(hosted_env["tmp"] / "warehouse")
    assert KEY.encode() not in _files_text(hosted_env["tmp"] / "cache")
    assert KEY not in json.dumps(xcoms)
    out = capsys.readouterr()
    assert KEY not in caplog.text and KEY not in out.out and KEY not in out.err


def test_evals_run_with_an_endpoint_ref_end_to_end_and_a_wrong_key_is_terminal(
    hosted_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from evals.cli import app
    from evals.pipeline.steps import RunFailures
    from evals.warehouse import Warehouse

    caplog.set_level(logging.INFO)
    args = ["run", "-c", "endpoint:simulator", "--suite", "none", "--scenario", hosted_env["scenario"]]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    runs = [r for r in Warehouse.from_settings().run_records() if r.status == "published"]
    assert [(r.model_id, r.source) for r in runs] == [("simulator", "endpoint")]
    assert KEY not in result.output and KEY not in caplog.text

    # A wrong key: the run fails with a terminal error naming where the key lives, never the key.
    monkeypatch.setenv("SIM_HOSTED_KEY", "sk-wrong-0000")
    result = CliRunner().invoke(app, [*args, "--logical-date", "2030-01-02T00:00:00+00:00"])
    assert result.exit_code != 0 and isinstance(result.exception, RunFailures)
    failed = [r for r in Warehouse.from_settings().run_records() if r.status == "failed"]
    assert len(failed) == 1 and failed[0].error is not None
    assert "refused the credentials" in failed[0].error and "SIM_HOSTED_KEY" in failed[0].error
    assert "sk-wrong-0000" not in failed[0].error and "sk-wrong-0000" not in str(result.exception)
    assert "sk-wrong-0000" not in caplog.text


def test_multiple_choice_tasks_are_skipped_and_named_for_a_hosted_model(
    hosted_env: dict[str, Any], tmp_path: Path
) -> None:
    """A suite of multiple-choice tasks only: nothing a chat API can score; the run says so and still publishes
    its latency."""
    from evals.pipeline.evaluate import generation_tasks
    from evals.pipeline.publish import run_context
    from evals.pipeline.steps import run_checkpoints
    from evals.warehouse import Warehouse

    reduced, skipped = generation_tasks("smoke")
    assert reduced is not None and reduced.tasks == ["bigbench_arithmetic_1d_add"]
    assert skipped == {"bigbench_mc": ["multiple_choice"]}

    suites = Path(__file__).resolve().parents[3] / "evals" / "suites"
    mc_only = yaml.safe_load((suites / "smoke.yaml").read_text())
    mc_only.update(name="smoke-mc", tasks=["bigbench_mc"], include_path="bigbench_smoke")
    suite = tmp_path / "smoke-mc.yaml"
    suite.write_text(yaml.safe_dump(mc_only))

    params = {"checkpoints": ["endpoint:simulator"], "suite": str(suite), "scenario": hosted_env["scenario"]}
    run_checkpoints(params, run_context(), on_failure=lambda name, error: pytest.fail(f"{name}: {error}"))
    (run,) = [r for r in Warehouse.from_settings().run_records() if r.status == "published"]
    assert run.config is not None
    assert run.config["endpoint"]["skipped_tasks"] == {"bigbench_mc": ["multiple_choice"]}
    assert any("bigbench_mc" in note and "no accuracy measured" in note for note in run.config["notes"])


def test_hosted_accuracy_runs_the_generation_tasks_through_lm_eval_chat_and_matches_the_servers_record(
    hosted_env: dict[str, Any],
) -> None:
    """lm-eval's chat-completions model against the hosted API: its exact-match score equals the share of questions
    the server itself recorded answering correctly (the server's truth, not anything this project computed)."""
    from evals.latency.simulator import fetch_truth, reset_truth
    from evals.pipeline.publish import run_context
    from evals.pipeline.steps import run_checkpoints
    from evals.warehouse import Warehouse

    limit = 40
    reset_truth(hosted_env["url"])
    params = {"checkpoints": ["endpoint:simulator"], "suite": "smoke", "scenario": "none", "limit": limit}
    run_checkpoints(params, run_context(), on_failure=lambda name, error: pytest.fail(f"{name}: {error}"))
    (run,) = [r for r in Warehouse.from_settings().run_records() if r.status == "published"]
    assert run.config is not None and run.config["endpoint"]["skipped_tasks"] == {"bigbench_mc": ["multiple_choice"]}

    asked = [t for t in fetch_truth(hosted_env["url"]).values() if t["question"] is not None]
    assert len(asked) == limit and len({t["question"] for t in asked}) == limit  # one request per scored question
    server_says = sum(t["correct"] for t in asked) / limit
    assert 0.4 < server_says < 0.95  # the seed mixes right and wrong answers

    rows = Warehouse.from_settings().read_table("accuracy").to_pylist()
    scored = {(r["metric"], r["filter"]): r["value"] for r in rows if r["task"] == "bigbench_arithmetic_1d_add"}
    assert scored[("exact_match", "strict-match")] == pytest.approx(server_says)
    assert scored[("exact_match", "flexible-extract")] == pytest.approx(server_says)
