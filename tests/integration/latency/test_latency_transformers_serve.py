"""A real model server: ``transformers serve`` on the CPU with the tiny Llama checkpoint, through the smoke scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.cli import app
from evals.latency.scenario import load_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_smoke_scenario_against_transformers_serve(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'warehouse'}")
    monkeypatch.setenv("EVALS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EVALS_LATENCY_BACKEND", "transformers")
    # One torch thread: on a shared 2-core machine, more threads only contend (the server inherits this env).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "rows.json"
    result = CliRunner().invoke(
        app,
        [
            "latency",
            "--checkpoint",
            str(tiny_model_dir),
            "--scenario",
            "smoke",
            "--model-id",
            "evals-test/tiny",
            "--json",
            str(out),
            "--publish",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    smoke, _ = load_scenario("smoke")
    rows = json.loads(out.read_text())
    assert [(r["load_type"], r["load"]) for r in rows] == [(lv.load_type, lv.load) for lv in smoke.levels]
    for row in rows:
        assert row["n_requests"] == smoke.requests_per_level and row["n_failed"] == 0
        assert 0 < row["ttft_p50_ms"] <= row["e2e_p50_ms"]
        assert row["output_tokens_per_s"] > 0 and row["usd_per_1m_output_tokens"] > 0
        assert row["gpu_count"] == 1  # a CPU server is priced as one unit

    from evals.warehouse import Warehouse

    store = Warehouse.from_settings()
    (run,) = store.read_table("runs").to_pylist()
    assert run["backend"] == "transformers" and run["hardware"]["gpu_count"] == 0
    assert len(run["revision"]) == 64  # content hash of the checkpoint directory
    config = json.loads(run["config"])["latency"]  # the pipeline's record: each half's provenance under its name
    assert config["server_load_s"] > 0 and config["ignore_eos_sent"] is False
    samples = store.read_table("latency_samples").to_pylist()
    assert len(samples) == 3 * smoke.requests_per_level
    # Token counts come from the server's usage; prompts are the synthetic lengths the scenario asks for.
    assert all(s["ok"] and 1 <= s["output_tokens"] <= smoke.output.max_tokens for s in samples)
    assert all(24 <= s["prompt_tokens"] <= 41 for s in samples)  # 24..40 words, plus BOS if the template adds one
    log_files = list((tmp_path / "cache" / "servers").glob("transformers-*.log"))
    assert len(log_files) == 1 and log_files[0].stat().st_size > 0
