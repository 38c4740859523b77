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
