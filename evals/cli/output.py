"""Where the CLI's rows go: a terminal table, or csv / json / parquet on stdout or in a file (``--format``, ``--out``).

Every command that prints or saves rows hands them to ``emit`` (a DuckDB relation, an Arrow table or a list of
dicts); JSON documents that are not rows (provenance, a validation result) go through ``write_json``. Text tables
for people are ``evals.report.text``'s business.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import typer

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    Rows: TypeAlias = duckdb.DuckDBPyRelation | pa.Table | Sequence[Mapping[str, Any]]


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def wrote(path: Path | str) -> None:
    """Tell the user (on stderr, so stdout stays data) which file a command wrote."""
    typer.echo(f"wrote {path}", err=True)


def write_json(payload: object, out: Path | None = None) -> None:
    """``payload`` as indented JSON (non-JSON values as strings) on stdout, or in ``out``."""
    text = json.dumps(payload, indent=2, default=str) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text)
    wrote(out)


def emit(rows: Rows, fmt: OutputFormat, out: Path | None = None, max_rows: int = 200) -> None:
    """Print rows as a table, or write them as csv/json/parquet to ``out`` (stdout for csv/json)."""
    if fmt is OutputFormat.table and out is not None:
        raise typer.BadParameter("--out needs --format csv, json or parquet")
    if fmt is OutputFormat.parquet and out is None:
        raise typer.BadParameter("--format parquet needs --out FILE")
    if fmt is OutputFormat.json:
        write_json(_dicts(rows), out)
        return
    relation = _relation(rows)
    if relation is None:
        typer.echo("no rows", err=True)
        return
    if fmt is OutputFormat.table:
        relation.show(max_rows=max_rows, max_width=10_000)
        return
    if out is None:  # csv on stdout
        sys.stdout.write(relation.df().to_csv(index=False))
        return
    if fmt is OutputFormat.parquet:
        relation.write_parquet(str(out))
    else:
        relation.write_csv(str(out))
    wrote(out)


def _dicts(rows: Rows) -> list[dict[str, Any]]:
    import duckdb
    import pyarrow as pa

    if isinstance(rows, duckdb.DuckDBPyRelation):
        return [dict(zip(rows.columns, row, strict=True)) for row in rows.fetchall()]
    if isinstance(rows, pa.Table):
        return rows.to_pylist()
    return [dict(row) for row in rows]


def _relation(rows: Rows) -> duckdb.DuckDBPyRelation | None:
    """The rows as a DuckDB relation; None for an empty list (no columns to show)."""
    import duckdb
    import pyarrow as pa

    if isinstance(rows, duckdb.DuckDBPyRelation):
        return rows
    if not isinstance(rows, pa.Table):
        if not rows:
            return None
        rows = pa.Table.from_pylist([dict(row) for row in rows])
    return duckdb.connect().from_arrow(rows)
