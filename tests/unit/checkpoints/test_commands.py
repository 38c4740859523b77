"""The ``evals discover`` and ``evals materialize`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.checkpoints.testing import make_checkpoint
from evals.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVALS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'warehouse'}")
    make_checkpoint(tmp_path / "models" / "org" / "m")
    watchlist = tmp_path / "watch.yaml"
    watchlist.write_text(f"sources:\n  - source: local\n    path: {tmp_path / 'models'}\n  - source: nope\n")
    return watchlist


def test_discover_prints_refs_and_reports_bad_entries(env: Path) -> None:
    result = CliRunner().invoke(app, ["discover", "--watchlist", str(env)])
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("local:org/m@")
    assert "unknown checkpoint source 'nope'" in result.stderr


def test_discover_json_then_materialize(env: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["discover", "--watchlist", str(env), "--json"])
    data = json.loads(result.stdout)
    assert [item["model_id"] for item in data["new"]] == ["org/m"]
    assert data["errors"][0]["entry"] == "sources[1]"
    ref = data["new"][0]["ref"]
    made = CliRunner().invoke(app, ["materialize", ref, "--watchlist", str(env)])
    assert made.exit_code == 0, made.output
    path = Path(made.stdout.strip())
    assert path.is_relative_to(tmp_path / "cache") and (path / "model.safetensors").is_file()


def test_materialize_rejects_a_malformed_ref(env: Path) -> None:
    result = CliRunner().invoke(app, ["materialize", "hf:../../etc@main"])
    assert result.exit_code == 2
    assert "contains '..'" in result.stderr


def test_discover_on_a_broken_watchlist_file(env: Path, tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("sources: {}\n")
    result = CliRunner().invoke(app, ["discover", "--watchlist", str(path)])
    assert result.exit_code == 2 and "'sources' must be a list" in result.stderr
