"""``evals latency --publish`` goes through the validation gate: a failed benchmark is quarantined, never listed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from evals.cli import app
from evals.latency.server import ServerHandle

pytestmark = pytest.mark.integration

PINNED = ("--model-id", "org/x", "--revision", "c" * 40)
UNPINNED = ("--publish", "--revision", "main")


def _scenario(tmp_path: Path, prompt: str) -> Path:
    (tmp_path / "prompts.jsonl").write_text(json.dumps({"prompt": prompt}) + "\n")
    data: dict[str, Any] = {
        "name": "gate-test",
        "version": "1",
        "api": "completions",
        "prompts": {"source": "jsonl", "path": "prompts.jsonl"},
        "output": {"max_tokens": 4},
        "levels": [{"concurrency": 2}],
        "requests_per_level": 6,
        "warmup_requests": 0,
        "timeout_s": 10,
        "slo": {"ttft_p95_ms": 1000},
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_all_failed_benchmark_is_quarantined_not_published(
    simulator: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'warehouse'}")
    args = ["--endpoint", simulator.endpoint, "--model", "simulator", "--scenario"]
    result = CliRunner().invoke(
        app,
        ["latency", *args, str(_scenario(tmp_path, "<<fault:http500>>")), "--publish", *PINNED],
    )
    assert result.exit_code == 2, result.output
    assert "failed validation" in result.output and "failure rate" in result.output
    assert "published run" not in result.output

    listed = CliRunner().invoke(app, ["quarantine", "list"])
    assert listed.exit_code == 0 and "org/x@cccccccccccc" in listed.output
    assert "failure rate n_failed/n_requests" in listed.output
    board = CliRunner().invoke(app, ["leaderboard"])
    assert "org/x" not in board.output


def test_publishing_an_endpoint_without_a_pinned_revision_is_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'warehouse'}")
    # Nothing listens on port 1: the refusal must come before any request is sent.
    result = CliRunner().invoke(
        app,
        ["latency", "--endpoint", "http://127.0.0.1:1", "--model", "m", "--scenario", "smoke", "--publish"],
    )
    assert result.exit_code == 2
    assert "refusing to publish a run without a pinned revision: pass --revision" in " ".join(result.output.split())
    bad = CliRunner().invoke(
        app,
        ["latency", "--endpoint", "http://127.0.0.1:1", "--model", "m", "--scenario", "smoke", *UNPINNED],
    )
    assert bad.exit_code == 2 and "expected a full commit SHA" in bad.output
