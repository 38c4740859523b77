"""Shipped offline task data (JSONL under evals/tasks/): read with a check naming the file, line and field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evals.errors import ConfigError

# The field types a task YAML may declare in ``dataset_kwargs.fields`` (name -> type name).
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "list[str]": (list,),
}


def read_records(path: Path, fields: Mapping[str, str], *, origin: str = "dataset_kwargs.data_files") -> list[dict]:
    """The JSON objects of one JSONL file, each checked to carry ``fields`` with the declared types.

    Every problem is a ConfigError that names the file, the line and the field (or ``origin``, the task-YAML field
    that named a missing file). A ``label`` next to ``choices`` must index into them.
    """
    unknown = sorted(set(fields.values()) - set(FIELD_TYPES))
    if unknown:
        raise ConfigError(
            f"dataset_kwargs.fields: unknown type(s) {', '.join(unknown)}; known: {', '.join(FIELD_TYPES)}"
        )
    if not path.is_file():
        raise ConfigError(f"task data file {path} does not exist ({origin})")
    records: list[dict] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"task data file {path} line {number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise ConfigError(f"task data file {path} line {number}: expected a JSON object")
            _check(record, fields, f"task data file {path} line {number}")
            records.append(record)
    if not records:
        raise ConfigError(f"task data file {path} holds no records ({origin})")
    return records


def _check(record: dict[str, Any], fields: Mapping[str, str], where: str) -> None:
    for name, type_name in fields.items():
        if name not in record:
            raise ConfigError(f"{where}: field {name!r} is missing (expected {type_name})")
        value: Any = record[name]
        allowed = FIELD_TYPES[type_name]
        right_type = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if not right_type:
            raise ConfigError(f"{where}: field {name!r} is {type(value).__name__}, expected {type_name}")
        if type_name == "list[str]" and (not value or not all(isinstance(v, str) for v in value)):
            raise ConfigError(f"{where}: field {name!r} must be a non-empty list of strings")
        if type_name == "str" and not value.strip():
            raise ConfigError(f"{where}: field {name!r} is empty")
    if "label" in fields and "choices" in fields and not 0 <= record["label"] < len(record["choices"]):
        raise ConfigError(
            f"{where}: field 'label' is {record['label']}, not an index of the {len(record['choices'])} choices"
        )


def load_splits(data_dir: Path, data_files: Mapping[str, str] | None, fields: Mapping[str, str] | None) -> Any:
    """A ``datasets.DatasetDict`` with one split per ``data_files`` entry (names relative to ``data_dir``)."""
    import datasets

    if not data_files:
        raise ConfigError(f"task data under {data_dir}: dataset_kwargs.data_files is missing or empty")
    splits = {}
    for split, name in data_files.items():
        records = read_records(data_dir / name, fields or {}, origin=f"dataset_kwargs.data_files.{split}")
        splits[split] = datasets.Dataset.from_list(records)
    return datasets.DatasetDict(splits)
