"""The ``evals`` entry point: settings listing (secrets masked) and one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.cli import app

EVALS = str(Path(sys.executable).parent / "evals")


def test_settings_lists_every_variable_and_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("EVALS_GPU_QUEUE", "h100")
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    assert "EVALS_GPU_QUEUE=h100" in result.output
    assert "EVALS_HF_TOKEN=********" in result.output
    assert "hf_secret_value" not in result.output


def test_terminal_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [EVALS, "materialize", "hf:../etc/passwd@" + "0" * 40],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:")


def test_help_lists_the_groups_not_the_hidden_old_names() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    listed = {line.strip("│ ").split()[0] for line in result.output.splitlines() if line.startswith("│ ")}
    assert {"warehouse", "quarantine", "query", "leaderboard"} <= listed
    assert not {"compact", "validate"} & listed


def test_old_name_compact_says_the_new_name_and_does_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'wh'}")
    runner = CliRunner()
    new = runner.invoke(app, ["warehouse", "compact", "--end", "2026-01-01"])
    old = runner.invoke(app, ["compact", "--end", "2026-01-01"])
    assert new.exit_code == old.exit_code == 0, old.output
    assert "note: 'evals compact' is now 'evals warehouse compact'" in old.stderr
    assert "note:" not in new.stderr
    assert old.stdout == new.stdout and "runs: 0 partitions" in old.stdout


def test_emit_writes_rows_of_dicts_as_json_csv_and_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import pyarrow.parquet as pq

    from evals.cli.output import OutputFormat, emit

    rows = [{"model_id": "org/a", "accuracy": 0.5}, {"model_id": "org/b", "accuracy": None}]
    emit(rows, OutputFormat.json, None)
    assert json.loads(capsys.readouterr().out) == rows
    emit(rows, OutputFormat.csv, None)
    assert capsys.readouterr().out.splitlines() == ["model_id,accuracy", "org/a,0.5", "org/b,"]
    emit(rows, OutputFormat.parquet, tmp_path / "rows.parquet")
    assert pq.read_table(tmp_path / "rows.parquet").to_pylist() == rows
    assert capsys.readouterr().err.strip() == f"wrote {tmp_path / 'rows.parquet'}"
    emit([], OutputFormat.json, None)
    assert capsys.readouterr().out.strip() == "[]"
