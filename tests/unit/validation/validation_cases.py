"""Valid runs for validation tests: tables whose cross-table counts agree, and what the run was asked for."""

from __future__ import annotations

from typing import Any

from factories import accuracy_rows, latency_rows, run_record, sample_rows

from evals.settings import Settings, get_settings
from evals.validation import Expected
from evals.warehouse import RunRecord, Warehouse

LOADS = (1, 8)
REQUESTS = 20  # what factories.latency_rows reports as n_requests per level

EXPECTED = Expected(
    n_samples={"arc_easy": 100, "gsm8k": 100},
    metrics={"arc_easy": ["acc,none"], "gsm8k": ["exact_match,strict-match"]},
    requests={("concurrency", float(load)): REQUESTS for load in LOADS},
)


def valid_tables(record: RunRecord) -> dict[str, list[dict[str, Any]]]:
    return {
        "accuracy": accuracy_rows(record),
        "latency": latency_rows(record, LOADS),
        "latency_samples": [row for load in LOADS for row in sample_rows(record, REQUESTS, float(load))],
    }


def valid_run(day: int = 1, **overrides: Any) -> tuple[RunRecord, dict[str, list[dict[str, Any]]]]:
    record = run_record(day=day, **overrides)
    return record, valid_tables(record)


def quiet_settings(**overrides: Any) -> Settings:
    """Settings of a test warehouse; Data Docs off unless a test is about them (they cost time)."""
    return get_settings(**{"validation_data_docs": False, **overrides})


def warehouse_at(uri: str, **overrides: Any) -> Warehouse:
    return Warehouse(uri, quiet_settings(**overrides))
