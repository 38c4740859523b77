"""``evals latency`` against a running endpoint (the simulator): table, --json rows, --publish, early stop, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from evals.cli import app
from evals.latency.server import ServerHandle
from evals.schemas import column_names

pytestmark = [pytest.mark.integration, pytest.mark.timing]


def _scenario(tmp_path: Path, prompts: list[str], levels: list[dict[str, Any]], **extra: Any) -> Path:
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    data = {
        "name": "cli-test",
        "version": "3",
        "api": "completions",
        "prompts": {"source": "jsonl", "path": "prompts.jsonl"},
        "output": {"max_tokens": 4},
        "levels": levels,
        "requests_per_level": 8,
        "warmup_requests": 2,
        "timeout_s": 10,
        "slo": {"ttft_p95_ms": 1000, "tpot_p95_ms": 200},
        "gpu_hour_usd": 2.0,
        **extra,
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["latency", *args], catch_exceptions=False)


def test_endpoint_benchmark_prints_levels_writes_json_and_publishes(
    simulator: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'warehouse'}")
    scenario = _scenario(
        tmp_path,
        [f"hello {i}" for i in range(4)],
        [{"concurrency": 1}, {"concurrency": 4}, {"rate": 20, "arrival": "constant"}],
    )
    out = tmp_path / "rows.json"
    result = _invoke(
        "--endpoint",
        simulator.endpoint,
        "--model",
        "simulator",
        "--scenario",
        str(scenario),
        "--json",
        str(out),
        "--publish",
        "--revision",
        "a" * 40,
        "--model-id",
        "org/sim",
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "TTFT p50/p95/p99 ms" in lines[0]
    assert [line.split()[:2] for line in lines[1:4]] == [["concurrency", "1"], ["concurrency", "4"], ["rate", "20"]]
    rows = json.loads(out.read_text())
    assert len(rows) == 3
    expected_columns = set(column_names("latency")) - {"run_id", "eval_date", "schema_version"}
    assert set(rows[0]) == expected_columns
    assert all(row["n_failed"] == 0 and row["goodput"] == 1.0 for row in rows)
    assert rows[0]["ttft_p50_ms"] >= 20.0  # the simulator's smallest injected TTFT

    from evals.warehouse import Warehouse

    store = Warehouse.from_settings()
    runs = store.read_table("runs").to_pylist()
    assert len(runs) == 1 and runs[0]["scenario"] == "cli-test" and runs[0]["scenario_version"] == "3"
    assert runs[0]["revision"] == "a" * 40 and runs[0]["backend"] == "external"
    assert json.loads(runs[0]["row_counts"]) == {"latency": 3, "latency_samples": 24}
    assert runs[0]["hardware"]["cpu"]
    published = store.read_table("latency").to_pylist()
    assert sorted(r["load"] for r in published) == [1.0, 4.0, 20.0]
    assert all(r["model_id"] == "org/sim" and r["run_id"] == runs[0]["run_id"] for r in published)


def test_a_saturated_sweep_stops_early_and_says_why(simulator: ServerHandle, tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path, ["<<fault:http500>>"], [{"rate": 50}, {"rate": 100}, {"concurrency": 2}], warmup_requests=0
    )
    out = tmp_path / "rows.json"
    result = _invoke(
        "--endpoint", simulator.endpoint, "--model", "simulator", "--scenario", str(scenario), "--json", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "note: rate 50: saturated: error rate 100% above 5% (HTTP 500 x8)" in result.stdout
    assert "note: skipped after saturation: rate 100" in result.stdout
    rows = json.loads(out.read_text())
    assert [(r["load_type"], r["load"]) for r in rows] == [("rate", 50.0), ("concurrency", 2.0)]
    assert all(r["goodput"] == 0.0 and r["n_failed"] == 8 for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "smoke"], "give exactly one of --endpoint URL or --checkpoint DIR"),
        (["--scenario", "smoke", "--endpoint", "http://127.0.0.1:1"], "--endpoint needs --model"),
        (["--scenario", "nope", "--endpoint", "http://127.0.0.1:1", "--model", "m"], "unknown scenario 'nope'"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["latency", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_bad_scenario_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "b",
                "version": 1,
                "api": "completions",
                "output": {"max_tokens": 1},
                "prompts": {"source": "synthetic", "input_tokens": 4},
                "levels": [{"concurrency": -1}],
            }
        )
    )
    result = CliRunner().invoke(app, ["latency", "--scenario", str(path), "--endpoint", "http://x", "--model", "m"])
    assert result.exit_code == 2
    assert "levels[0].concurrency: Input should be greater than 0 (got -1)" in result.output


def test_run_scenario_with_a_launched_server_handle(simulator: ServerHandle) -> None:
    """The pipeline's entry point: a Scenario object, given prompts, and the handle its launcher returned."""
    import datetime as dt

    from evals.checkpoints import CheckpointRef
    from evals.latency import run_scenario
    from evals.latency.prompts import Prompt
    from evals.latency.scenario import parse_scenario
    from evals.pipeline.outcome import merge
    from evals.pipeline.plan import Options
    from evals.pipeline.publish import outcome_record, run_context

    scenario = parse_scenario(
        {
            "name": "api",
            "version": 1,
            "api": "chat",
            "prompts": {"source": "synthetic", "input_tokens": 8},
            "output": {"max_tokens": 3},
            "levels": [{"concurrency": 2}],
            "requests_per_level": 4,
            "warmup_requests": 0,
            "gpu_hour_usd": 4.0,
        }
    )
    result = run_scenario(
        scenario,
        simulator.endpoint,
        simulator.model,
        model_id="org/m",
        revision="b" * 40,
        prompts=[Prompt(text="x")],
        server=simulator,
    )
    # A loaded machine may add "client-limited" notes (event-loop lag); nothing stopped or skipped the sweep.
    assert result.backend == "simulator" and result.skipped == []
    assert [note for note in result.notes if "client-limited" not in note] == []
    assert [r["n_requests"] for r in result.latency_rows] == [4] and len(result.sample_rows) == 4
    record = outcome_record(
        CheckpointRef("hf", "org/m", "b" * 40),
        Options(suite=None, scenario=result.scenario.name, scenario_version=result.scenario.version),
        run_context(dt.datetime(2026, 1, 2, tzinfo=dt.UTC)),
        merge(None, result),
    )
    assert (record.scenario, record.scenario_version, record.backend) == ("api", "1", "simulator")
    assert record.config is not None and record.config["latency"]["server_backend"] == "simulator"


def test_processes_option_sends_each_level_from_several_processes(simulator: ServerHandle, tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, [f"hi {i}" for i in range(4)], [{"concurrency": 4}, {"rate": 40}])
    out = tmp_path / "rows.json"
    result = _invoke(
        "--endpoint", simulator.endpoint, "--model", "simulator", "--scenario", str(scenario),
        "--json", str(out), "--processes", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [(row["client_processes"], row["n_requests"], row["n_failed"]) for row in rows] == [(2, 8, 0)] * 2
    # The simulator speaks Prometheus: the server's own view is filled in every level.
    assert all(row["server_metrics_scrapes"] >= 1 and row["server_ttft_mean_ms"] >= 20.0 for row in rows)


def test_more_processes_than_streams_still_sends_every_request(simulator: ServerHandle, tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, ["hi"], [{"concurrency": 1}])
    out = tmp_path / "rows.json"
    result = _invoke(
        "--endpoint", simulator.endpoint, "--model", "simulator", "--scenario", str(scenario),
        "--json", str(out), "--processes", "3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [row] = json.loads(out.read_text())
    assert (row["client_processes"], row["n_requests"], row["n_failed"]) == (1, 8, 0)


def test_trials_repeat_each_level_and_publish_their_spread(
    simulator: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``trials: 3``: every level runs three times; the gate counts 3 x the requests; the samples say which trial sent
    them; the stored between-trial CV is the CV of each trial's P95 TTFT computed here from those samples."""
    import numpy as np

    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'warehouse'}")
    # A loaded machine can make a trial's load generator fall behind (a saturation): every trial must still run.
    scenario = _scenario(
        tmp_path,
        [f"hello {i}" for i in range(4)],
        [{"concurrency": 2}, {"rate": 20}],
        trials=3,
        saturation={"stop": False},
    )
    result = _invoke(
        "--endpoint", simulator.endpoint, "--model", "simulator", "--scenario", str(scenario),
        "--publish", "--revision", "c" * 40, "--model-id", "org/sim",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    con = connect(Warehouse.from_settings())
    levels = con.execute(
        "select load_type, n_requests, n_trials, ttft_p95_trial_cv, e2e_p95_trial_cv from latency order by 1"
    ).fetchall()
    assert [row[:3] for row in levels] == [("concurrency", 24, 3), ("rate", 24, 3)]
    per_trial = con.execute(
        """select load_type, trial, count(*), list((first_token_s - sent_s) * 1000), min(request_index),
                  max(request_index)
           from latency_samples group by all order by 1, 2"""
    ).fetchall()
    assert [(t, k, n, low, high) for t, k, n, _, low, high in per_trial] == [
        (kind, k, 8, 8 * k, 8 * k + 7) for kind in ("concurrency", "rate") for k in range(3)
    ]
    for load_type, *_, cv, _ in levels:
        p95 = np.array([np.percentile(ttft, 95) for kind, _, _, ttft, _, _ in per_trial if kind == load_type])
        assert cv == pytest.approx(p95.std(ddof=1) / p95.mean(), rel=1e-6)
    printed = [line for line in result.stdout.splitlines() if " trials at " in line]
    assert [line.split(", CV")[0] for line in printed] == ["3 trials at concurrency 2", "3 trials at rate 20"]
    assert f"P95 TTFT {levels[0][3]:.1%}" in printed[0]
