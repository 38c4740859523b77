"""The run record: one row of the ``runs`` table, the commit record of a run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from evals.schemas import COLUMNS, HARDWARE_FIELDS, VERSION_FIELDS, schema_version
from evals.warehouse.keys import eval_date_of, make_run_id


@dataclasses.dataclass
class RunRecord:
    """Everything the ``runs`` table says about one (checkpoint, suite, scenario, logical date)."""

    model_id: str
    revision: str
    logical_date: dt.datetime
    source: str
    suite: str | None = None
    suite_version: str | None = None
    scenario: str | None = None
    scenario_version: str | None = None
    status: str = "published"
    dag_id: str | None = None
    dag_run_id: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    checkpoint_uri: str | None = None
    dtype: str | None = None
    params: int | None = None
    backend: str | None = None
    hardware: dict[str, Any] | None = None
    versions: dict[str, str | None] | None = None
    config_hash: str | None = None
    config: dict[str, Any] | None = None
    row_counts: dict[str, int] | None = None
    error: str | None = None
    run_id: str = ""

    def __post_init__(self) -> None:
        expected = make_run_id(
            self.model_id,
            self.revision,
            self.suite,
            self.suite_version,
            self.scenario,
            self.scenario_version,
            self.logical_date,
        )
        if self.run_id and self.run_id != expected:
            raise ValueError(f"run_id {self.run_id!r} does not match its key fields (expected {expected!r})")
        self.run_id = expected

    @property
    def eval_date(self) -> dt.date:
        return eval_date_of(self.logical_date)

    def to_row(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        row["config"] = json.dumps(self.config, sort_keys=True, default=str) if self.config is not None else None
        row["row_counts"] = json.dumps(self.row_counts, sort_keys=True) if self.row_counts is not None else None
        row["hardware"] = _complete(self.hardware, HARDWARE_FIELDS)
        row["versions"] = _complete(self.versions, VERSION_FIELDS)
        row["eval_date"] = self.eval_date
        row["schema_version"] = schema_version("runs")
        return {name: row[name] for name in (c.name for c in COLUMNS["runs"])}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in row.items() if k in names}
        for key in ("config", "row_counts"):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = json.loads(kwargs[key])
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (for XCom and manifests); :meth:`from_json` reverses it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("logical_date", "started_at", "finished_at"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        fields = dict(data)
        for key in ("logical_date", "started_at", "finished_at"):
            if isinstance(fields.get(key), str):
                fields[key] = dt.datetime.fromisoformat(fields[key])
        return cls(**fields)

    def replace(self, **changes: Any) -> RunRecord:
        return dataclasses.replace(self, **changes)


def _complete(values: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any] | None:
    if values is None:
        return None
    unknown = set(values) - set(keys)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; allowed: {', '.join(keys)}")
    return {key: values.get(key) for key in keys}
