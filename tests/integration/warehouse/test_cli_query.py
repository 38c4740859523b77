"""``evals query`` / ``evals leaderboard`` as a user runs them, against file:// and SeaweedFS."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from factories import all_tables, publish_run, run_record

from evals.warehouse import Warehouse

pytestmark = pytest.mark.integration
EVALS = str(Path(sys.executable).parent / "evals")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EVALS, *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy(), timeout=120)


def test_query_and_leaderboard(warehouse_uri: str, tmp_path: Path) -> None:
    wh = Warehouse(warehouse_uri)
    for model in ("org/a", "org/b"):
        record = run_record(model)
        publish_run(wh, record, all_tables(record))

    result = run_cli("query", "select count(*) as n from runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line.strip("│ ") for line in result.stdout.splitlines() if line.startswith("│")][-1] == "2"
    result = run_cli("query", "select count(*) as n from accuracy", "--format", "csv", cwd=tmp_path)
    assert result.stdout.split() == ["n", "4"]

    result = run_cli("query", "select model_id from runs order by 1", "--format", "json", cwd=tmp_path)
    assert json.loads(result.stdout) == [{"model_id": "org/a"}, {"model_id": "org/b"}]

    out = tmp_path / "board.parquet"
    result = run_cli("leaderboard", "--format", "parquet", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import pyarrow.parquet as pq

    assert sorted(pq.read_table(out).column("model_id").to_pylist()) == ["org/a", "org/b"]

    result = run_cli("query", "select * from no_such_table", cwd=tmp_path)
    assert result.returncode != 0 and "no_such_table" in result.stderr


def test_bad_warehouse_setting_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", "ftp://nowhere")
    result = run_cli("query", "select 1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: invalid settings: EVALS_WAREHOUSE")
    assert "Traceback" not in result.stderr


def test_as_of_shows_the_warehouse_as_it_was(warehouse_uri: str, tmp_path: Path) -> None:
    import datetime as dt
    import time

    wh = Warehouse(warehouse_uri)
    first = run_record("org/a", day=1)
    publish_run(wh, first, all_tables(first))
    time.sleep(0.01)
    moment = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    second = run_record("org/b", day=2)
    publish_run(wh, second, all_tables(second))

    then = run_cli("leaderboard", "--as-of", moment.isoformat(), "--format", "json", cwd=tmp_path)
    assert then.returncode == 0, then.stderr
    assert [row["model_id"] for row in json.loads(then.stdout)] == ["org/a"]
    naive_utc = moment.replace(tzinfo=None).isoformat()  # no offset: read as UTC
    result = run_cli("query", "select count(*) as n from accuracy", "--as-of", naive_utc, "-f", "csv", cwd=tmp_path)
    assert result.stdout.split() == ["n", "2"]
    now = run_cli("query", "select count(*) as n from accuracy", "-f", "csv", cwd=tmp_path)
    assert now.stdout.split() == ["n", "4"]
    bad = run_cli("leaderboard", "--as-of", "yesterday", cwd=tmp_path)
    assert bad.returncode != 0 and "--as-of" in bad.stderr
