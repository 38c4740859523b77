"""Rows made to fit the data contract: :func:`conform` turns a frame into a table of exactly its schema, or says
which column does not fit."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evals.errors import SchemaViolation
from evals.schemas import ENUMS, OMITTABLE, arrow_schema, schema_version

if TYPE_CHECKING:
    import pyarrow as pa

Frame = Any  # pyarrow.Table | pandas.DataFrame | Sequence[Mapping[str, Any]]


def conform(table: str, data: Frame) -> pa.Table:
    """Return ``data`` as an Arrow table of exactly ``table``'s schema, or raise :class:`SchemaViolation`.

    Accepts an Arrow table, a pandas DataFrame or a list of row dicts. ``schema_version`` is filled when absent.
    Refused: missing or unknown columns, values of the wrong type (no lossy casts), nulls in required
    columns, NaN/inf where a required float is expected, values outside a column's enumeration.
    """
    import pyarrow as pa

    schema = arrow_schema(table)
    columns = _columns_of(table, data)
    n_rows = len(next(iter(columns.values()))) if columns else 0
    if "schema_version" not in columns:
        columns["schema_version"] = pa.array([schema_version(table)] * n_rows, pa.int32())
    for name in OMITTABLE.get(table, ()):
        if name not in columns:
            columns[name] = pa.nulls(n_rows, schema.field(name).type)
    missing = [name for name in schema.names if name not in columns]
    if missing:
        raise SchemaViolation(table, missing[0], f"missing column (all missing: {', '.join(missing)})")
    unknown = [name for name in columns if name not in schema.names]
    if unknown:
        raise SchemaViolation(table, unknown[0], f"unknown column, not in schema version {schema_version(table)}")

    arrays = []
    for field in schema:
        array = _to_arrow(table, field, columns[field.name])
        if not field.nullable and array.null_count:
            raise SchemaViolation(table, field.name, f"{array.null_count} null value(s) in a required column")
        _check_values(table, field, array)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=schema)


def _columns_of(table: str, data: Frame) -> dict[str, Any]:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return {name: data.column(name) for name in data.column_names}
    if hasattr(data, "columns") and hasattr(data, "to_dict"):  # pandas DataFrame, without importing pandas
        if data.columns.duplicated().any():
            dup = str(data.columns[data.columns.duplicated()][0])
            raise SchemaViolation(table, dup, "duplicated column")
        return {str(name): data[name] for name in data.columns}
    if isinstance(data, Sequence):
        names: dict[str, None] = {}
        for row in data:
            if not isinstance(row, Mapping):
                raise SchemaViolation(table, "-", f"rows must be mappings, got {type(row).__name__}")
            names.update(dict.fromkeys(row))
        return {name: [row.get(name) for row in data] for name in names}
    raise SchemaViolation(table, "-", f"cannot read a frame of type {type(data).__name__}")


def _to_arrow(table: str, field: pa.Field, values: Any) -> pa.Array:
    import pyarrow as pa

    if hasattr(values, "to_numpy") and hasattr(values, "dtype"):  # pandas Series: arrow first, then check
        try:
            values = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise SchemaViolation(table, field.name, f"expected {field.type}: {_first_line(exc)}") from exc
    try:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if isinstance(values, pa.Array):
            if values.type == field.type:
                return values
            if pa.types.is_string(values.type) and not pa.types.is_string(field.type):
                raise pa.ArrowTypeError(f"got strings, expected {field.type}")
            return values.cast(field.type, safe=True)
        if pa.types.is_nested(field.type):
            return pa.array(list(values), type=field.type, from_pandas=True)
        # Infer first, then cast safely: pa.array(type=int64) would silently truncate 10.5 to 10.
        return _to_arrow(table, field, pa.array(list(values), from_pandas=True))
    except SchemaViolation:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise SchemaViolation(table, field.name, f"expected {field.type}: {_first_line(exc)}") from exc


def _check_values(table: str, field: pa.Field, array: pa.Array) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    allowed = ENUMS.get((table, field.name))
    if allowed:
        bad = pc.filter(array, pc.invert(pc.fill_null(pc.is_in(array, pa.array(allowed)), True)))
        if len(bad):
            raise SchemaViolation(table, field.name, f"value {bad[0].as_py()!r} not one of {', '.join(allowed)}")
    if pa.types.is_floating(field.type) and not field.nullable and len(array):
        non_finite = [v for v in array.to_pylist() if v is not None and not math.isfinite(v)]
        if non_finite:
            raise SchemaViolation(table, field.name, f"non-finite value {non_finite[0]} in a required column")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
