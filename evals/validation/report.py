"""Validation outcomes: failed expectations in words, and the JSON document a quarantined run keeps."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evals.validation.expected import Expected
from evals.validation.frames import CHECK_PREFIX

REPORT_VERSION = 1
_MAX_MESSAGE = 4000  # the runs.error column and log lines stay readable


@dataclass
class Failure:
    """One failed check: a GX expectation, or a schema violation found before GX could run."""

    table: str
    check: str  # GX expectation type, or "schema"
    description: str
    column: str | None = None
    observed: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{self.table}: {self.description}"
        if self.unexpected_count:
            example = f"; e.g. {_format_row(self.rows[0])}" if self.rows else ""
            text += f" [{self.unexpected_count} of {self.element_count} rows fail{example}]"
        elif isinstance(self.observed, Mapping) and "missing" in self.observed:
            text += f" [missing: {_short(', '.join(map(str, self.observed['missing'])))}]"
        elif self.observed is not None:
            text += f" [observed: {_short(self.observed)}]"
        return text

    def to_json(self) -> dict[str, Any]:
        return json_safe(self.__dict__)


@dataclass
class ValidationReport:
    """Everything one validation found; ``success`` means the run may be published."""

    run_id: str
    model_id: str
    revision: str
    expected: Expected
    thresholds: dict[str, Any]
    failures: list[Failure] = field(default_factory=list)
    # table -> GX suite validation result, turned into JSON only when the report is kept (a quarantined run):
    # serializing every result cost 15 % of a passing run's validation.
    results: dict[str, Any] = field(default_factory=dict)
    raw_rows: dict[str, Any] = field(default_factory=dict)  # tables that could not be conformed, as rows
    validated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def success(self) -> bool:
        return not self.failures

    @property
    def kind(self) -> str:
        if self.success:
            return "passed"
        return "schema_violation" if any(f.check == "schema" for f in self.failures) else "expectations"

    def summary(self) -> str:
        """One line naming every failed check, e.g. for ``ValidationFailed`` and ``runs.error``."""
        if self.success:
            return f"run {self.run_id} passed validation"
        checks = "; ".join(f"{n}) {failure.describe()}" for n, failure in enumerate(self.failures, 1))
        text = (
            f"run {self.run_id} ({self.model_id}@{self.revision[:12]}) failed validation, "
            f"{len(self.failures)} check(s): {checks}"
        )
        return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."

    def to_json(self) -> dict[str, Any]:
        return json_safe(
            {
                "report_version": REPORT_VERSION,
                "run_id": self.run_id,
                "model_id": self.model_id,
                "revision": self.revision,
                "validated_at": self.validated_at,
                "success": self.success,
                "kind": self.kind,
                "summary": self.summary(),
                "failures": [failure.to_json() for failure in self.failures],
                "expected": self.expected.to_json(),
                "thresholds": self.thresholds,
                "raw_rows": self.raw_rows,
                "gx_results": {table: result.to_json_dict() for table, result in self.results.items()},
            }
        )


def failures_of(table: str, result: Any) -> list[Failure]:
    """The failed expectations of one GX suite validation result."""
    failures = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        kwargs = dict(config.kwargs)
        details = item.result or {}
        observed = details.get("observed_value")
        if observed is None and details.get("partial_missing_list"):
            observed = {"missing": details["partial_missing_list"]}
        exception = (item.exception_info or {}).get("exception_message")
        if exception:
            observed = {"error": str(exception).splitlines()[0]}
        failures.append(
            Failure(
                table=table,
                check=config.type,
                description=config.description or config.type,
                column=kwargs.get("column") or kwargs.get("column_A") or None,
                observed=json_safe(observed),
                unexpected_count=details.get("unexpected_count"),
                element_count=details.get("element_count"),
                rows=json_safe(details.get("partial_unexpected_index_list") or []),
            )
        )
    return failures


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON data: numpy scalars unwrapped, NaN/inf spelled as strings, dates as ISO text."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):  # numpy arrays and scalars
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "to_json_dict"):
        return json_safe(value.to_json_dict())
    return str(value)


def _format_row(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{key.removeprefix(CHECK_PREFIX)}={_short(value)}" for key, value in row.items())


def _short(value: Any, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
