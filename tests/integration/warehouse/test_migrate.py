"""``evals warehouse migrate``: a Hive-layout warehouse (round 1's format) into Iceberg, on file:// and SeaweedFS."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from factories import accuracy_rows, latency_rows, run_record

from evals.conformance import conform
from evals.schemas import PARTITION_COLUMN
from evals.warehouse import Warehouse
from evals.warehouse.hive import compacted_file, run_file
from evals.warehouse.storage import Storage, make_filesystem, parse_uri
from evals.warehouse.views import connect

pytestmark = pytest.mark.integration
EVALS = str(Path(sys.executable).parent / "evals")


def write(storage: Storage, relative: str, table: str, rows: list[dict[str, Any]]) -> None:
    from evals.schemas import arrow_schema

    data = conform(table, rows) if rows else arrow_schema(table).empty_table()
    storage.write_parquet(relative, data.drop_columns([PARTITION_COLUMN]))


def hive_warehouse(uri: str) -> dict[str, Any]:
    """A Hive-layout warehouse exercising every rule of that format; returns the truth a reader must see."""
    wh = Warehouse(uri)
    storage = Storage(parse_uri(uri), make_filesystem(parse_uri(uri), wh.settings))
    a, b, c = run_record("org/a", day=1), run_record("org/b", day=1), run_record("org/c", day=2)
    failed, quarantined = run_record("org/f", day=2), run_record("org/q", day=2)
    day1 = a.eval_date

    def acc(record: Any, value: float) -> list[dict[str, Any]]:
        return [
            {**row, "run_id": record.run_id, "eval_date": record.eval_date}
            for row in accuracy_rows(record, {"arc_easy": value, "gsm8k": value})
        ]

    def lat(record: Any) -> list[dict[str, Any]]:
        return [{**row, "run_id": record.run_id, "eval_date": record.eval_date} for row in latency_rows(record)]

    for record, status in ((a, "published"), (b, "published"), (c, "published"), (failed, "failed")):
        write(
            storage, run_file("runs", record.eval_date, record.run_id), "runs", [record.replace(status=status).to_row()]
        )
    write(
        storage,
        f"_quarantine/{run_file('runs', quarantined.eval_date, quarantined.run_id)}",
        "runs",
        [quarantined.replace(status="quarantined").to_row()],
    )
    write(
        storage,
        f"_quarantine/{run_file('accuracy', quarantined.eval_date, quarantined.run_id)}",
        "accuracy",
        acc(quarantined, 0.3),
    )
    # day 1: two compacted generations (only the newest counts) and a per-run file of A that wins over both.
    write(storage, compacted_file("accuracy", day1, 1), "accuracy", acc(a, 0.1) + acc(b, 0.1))
    write(storage, compacted_file("accuracy", day1, 2), "accuracy", acc(a, 0.2) + acc(b, 0.2))
    write(storage, run_file("accuracy", day1, a.run_id), "accuracy", acc(a, 0.9))
    write(storage, compacted_file("latency", day1, 1), "latency", lat(a) + lat(b))
    write(storage, run_file("latency", day1, b.run_id), "latency", [])  # an empty per-run file hides B's rows
    # day 2: per-run files; the failed run's data is there but never counted.
    write(storage, run_file("accuracy", c.eval_date, c.run_id), "accuracy", acc(c, 0.5))
    write(storage, run_file("latency", c.eval_date, c.run_id), "latency", lat(c))
    write(storage, run_file("accuracy", failed.eval_date, failed.run_id), "accuracy", acc(failed, 0.7))
    return {
        "runs": sorted([a.run_id, b.run_id, c.run_id]),
        "accuracy": sorted([(a.run_id, 0.9)] * 2 + [(b.run_id, 0.2)] * 2 + [(c.run_id, 0.5)] * 2),
        "latency": sorted([a.run_id] * 2 + [c.run_id] * 2),
    }


def test_migration_brings_published_runs_once(warehouse_uri: str, tmp_path: Path) -> None:
    source = warehouse_uri.rstrip("/") + "-hive"
    truth = hive_warehouse(source)
    target = Warehouse(warehouse_uri)
    for attempt in range(2):  # a second migration replaces what the first wrote: each run stays there once
        result = subprocess.run(
            [EVALS, "warehouse", "migrate", "--from", source],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=os.environ.copy(),
            timeout=180,
        )
        assert result.returncode == 0, result.stderr
        assert "migrated 3 published run(s)" in result.stdout and "accuracy 6" in result.stdout, result.stdout
        con = connect(target)
        assert [r for (r,) in con.execute("select run_id from runs order by 1").fetchall()] == truth["runs"], attempt
        assert con.execute("select count(*) from all_runs").fetchone() == (3,)
        assert sorted(con.execute("select run_id, value from accuracy").fetchall()) == truth["accuracy"]
        assert sorted(r for (r,) in con.execute("select run_id from latency").fetchall()) == truth["latency"]
        assert target.read_table("accuracy").num_rows == 6  # nothing unpublished copied, nothing twice
