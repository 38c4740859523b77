"""The Hive layout of round 1 (what ``evals warehouse migrate`` reads)."""

import datetime as dt

from evals.warehouse.hive import compacted_file, compacted_generation, partition_date, run_file

DAY = dt.date(2026, 11, 29)


def test_hive_paths() -> None:
    assert run_file("accuracy", DAY, "abc") == "accuracy/eval_date=2026-11-29/abc.parquet"
    name = compacted_file("latency", DAY, 3).rsplit("/", 1)[1]
    assert name == "compacted-g000003.parquet"
    assert compacted_generation(name) == 3
    assert compacted_generation("abc.parquet") is None


def test_partition_date_of_a_path() -> None:
    assert partition_date("/w/accuracy/eval_date=2026-11-29/abc.parquet") == DAY
    assert partition_date("bucket/p/runs/eval_date=2026-11-29/compacted-g000001.parquet") == DAY
    assert partition_date("/w/accuracy/abc.parquet") is None
    assert partition_date("/w/accuracy/eval_date=soon/abc.parquet") is None
