from pathlib import Path

import typer
from typer.testing import CliRunner

from evals.cli.accuracy import register
from evals.report.text import format_accuracy_table


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def test_unknown_suite_exits_with_the_list(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["accuracy", "--checkpoint", str(tmp_path), "--suite", "nope"])
    assert result.exit_code == 2
    assert "unknown suite 'nope'" in result.output and "smoke" in result.output


def test_table_puts_subtasks_under_their_group() -> None:
    base = {"metric": "acc", "filter": "none", "stderr": None, "n_samples": 5, "num_fewshot": 0}
    rows = [
        base | {"task": "sub", "task_group": "grp", "value": 0.25},
        base | {"task": "grp", "task_group": None, "value": 0.5, "stderr": 0.1},
        base | {"task": "alone", "task_group": None, "value": 1.0},
    ]
    lines = format_accuracy_table(rows).splitlines()
    assert [line.split()[0] for line in lines] == ["task", "alone", "grp", "sub"]
    assert lines[3].startswith("  sub") and "0.1000" in lines[2]


def test_publishing_a_server_run_without_a_pinned_revision_is_refused(tmp_path: Path) -> None:
    args = ["accuracy", "--backend", "local-completions", "--base-url", "http://127.0.0.1:1/v1", "--publish"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2
    assert "refusing to publish a run without a pinned revision" in " ".join(result.output.split())
