"""The tables' schemas: keys, versions, every latency percentile, documented columns."""

import pytest

from evals.errors import SchemaViolation
from evals.schemas import COLUMNS, TABLES, arrow_schema


def test_every_table_has_keys_and_version() -> None:
    for table in TABLES:
        names = arrow_schema(table).names
        assert names[:2] == ["schema_version", "run_id"], table
        assert "eval_date" in names
        assert "eval_date" not in arrow_schema(table, with_partition=False).names


def test_latency_has_every_percentile_of_every_metric() -> None:
    names = arrow_schema("latency").names
    for metric in ("ttft", "tpot", "itl", "e2e"):
        for stat in ("mean", "p50", "p90", "p95", "p99"):
            assert f"{metric}_{stat}_ms" in names


def test_unknown_table() -> None:
    with pytest.raises(SchemaViolation, match="unknown table"):
        arrow_schema("nope")


def test_columns_are_documented_where_not_obvious() -> None:
    assert all(c.name for cols in COLUMNS.values() for c in cols)
