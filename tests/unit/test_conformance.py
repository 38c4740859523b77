"""conform(): rows, pandas and Arrow frames made to fit a table's schema, or refused with the column named."""

import math

import pandas as pd
import pyarrow as pa
import pytest
from factories import accuracy_rows, latency_rows, run_record, sample_rows

from evals.conformance import conform
from evals.errors import SchemaViolation, TerminalError
from evals.schemas import SCHEMA_VERSION, arrow_schema


def _acc(**overrides: object) -> list[dict]:
    record = run_record()
    row = {**accuracy_rows(record)[0], "run_id": record.run_id, "eval_date": record.eval_date, **overrides}
    return [row]


def test_conform_accepts_rows_and_fills_schema_version() -> None:
    table = conform("accuracy", _acc())
    assert table.schema == arrow_schema("accuracy")
    assert table.column("schema_version").to_pylist() == [SCHEMA_VERSION]


def test_conform_accepts_pandas_and_arrow() -> None:
    frame = pd.DataFrame(_acc())
    from_pandas = conform("accuracy", frame)
    assert conform("accuracy", from_pandas).equals(from_pandas)


def test_int_values_widen_to_float_but_floats_do_not_truncate_to_int() -> None:
    assert conform("accuracy", _acc(value=1)).column("value").to_pylist() == [1.0]
    with pytest.raises(SchemaViolation) as info:
        conform("accuracy", _acc(n_samples=10.5))
    assert (info.value.table, info.value.column) == ("accuracy", "n_samples")


@pytest.mark.parametrize(
    ("overrides", "column", "fragment"),
    [
        ({"value": "high"}, "value", "expected double"),
        ({"value": None}, "value", "null"),
        ({"stderr": "N/A"}, "stderr", "expected double"),
        ({"higher_is_better": "yes"}, "higher_is_better", "expected bool"),
        ({"extra_col": 1}, "extra_col", "unknown column"),
    ],
)
def test_conform_names_table_column_and_problem(overrides: dict, column: str, fragment: str) -> None:
    with pytest.raises(SchemaViolation) as info:
        conform("accuracy", _acc(**overrides))
    assert info.value.table == "accuracy"
    assert info.value.column == column
    assert fragment in str(info.value)
    assert isinstance(info.value, TerminalError)


def test_missing_column_is_named() -> None:
    rows = _acc()
    del rows[0]["metric"]
    with pytest.raises(SchemaViolation, match="column 'metric': missing column"):
        conform("accuracy", rows)


def test_string_in_float_column_of_a_pandas_frame() -> None:
    frame = pd.DataFrame(_acc() * 2)
    frame["value"] = pd.Series([0.5, "x"], dtype=object)
    with pytest.raises(SchemaViolation, match="'value'"):
        conform("accuracy", frame)


def test_pandas_nan_in_optional_float_becomes_null() -> None:
    frame = pd.DataFrame(_acc(stderr=math.nan))
    assert conform("accuracy", frame).column("stderr").to_pylist() == [None]


def test_inf_in_required_float_is_refused() -> None:
    with pytest.raises(SchemaViolation, match="non-finite"):
        conform("accuracy", _acc(value=math.inf))


def test_enumerated_values() -> None:
    record = run_record()
    row = {**record.to_row(), "status": "done"}
    with pytest.raises(SchemaViolation, match=r"'status'.*not one of published, quarantined, failed"):
        conform("runs", [row])


def test_wrong_arrow_type_is_refused_not_silently_cast() -> None:
    rows = _acc()
    table = pa.Table.from_pylist(rows).set_column(list(rows[0]).index("value"), "value", pa.array(["0.5"], pa.string()))
    with pytest.raises(SchemaViolation, match="'value'"):
        conform("accuracy", table)


def test_other_tables_conform_from_factories() -> None:
    record = run_record()
    keys = {"run_id": record.run_id, "eval_date": record.eval_date}
    assert conform("latency", [{**r, **keys} for r in latency_rows(record)]).num_rows == 2
    assert conform("latency_samples", [{**r, **keys} for r in sample_rows(record, 5)]).num_rows == 5
    assert conform("runs", [record.to_row()]).num_rows == 1
