"""Builders of valid rows for every table, for tests (override any field with keyword arguments)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from evals.schemas import LATENCY_LEVEL_EXTRA, LATENCY_METRICS
from evals.warehouse import RunRecord, Warehouse


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def run_record(model_id: str = "org/model-a", day: int = 1, **overrides: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "model_id": model_id,
        "revision": sha(model_id),
        "logical_date": dt.datetime(2026, 11, day, 2, 0, tzinfo=dt.UTC),
        "source": "local",
        "suite": "smoke",
        "suite_version": "1",
        "scenario": "smoke",
        "scenario_version": "1",
        "started_at": dt.datetime(2026, 11, day, 2, 0, tzinfo=dt.UTC),
        "finished_at": dt.datetime(2026, 11, day, 2, 5, tzinfo=dt.UTC),
        "backend": "hf",
        "dtype": "float32",
        "hardware": {"cpu": "test-cpu", "gpu_count": 0},
        "versions": {"checkpoint_evals": "0.1.0", "lm_eval": "0.4.13", "torch": "2.13.0"},
        "config_hash": "c0ffee",
    }
    fields.update(overrides)
    return RunRecord(**fields)


def accuracy_rows(record: RunRecord, tasks: dict[str, float] | None = None) -> list[dict[str, Any]]:
    tasks = tasks or {"arc_easy": 0.61, "gsm8k": 0.12}
    rows = []
    for task, value in tasks.items():
        rows.append(
            {
                "model_id": record.model_id,
                "revision": record.revision,
                "suite": record.suite,
                "task": task,
                "task_group": None,
                "task_version": "1.0",
                "metric": "acc" if task != "gsm8k" else "exact_match",
                "filter": "none" if task != "gsm8k" else "strict-match",
                "value": value,
                "stderr": 0.01,
                "n_samples": 100,
                "num_fewshot": 0,
                "higher_is_better": True,
            }
        )
    return rows


def latency_rows(record: RunRecord, loads: tuple[int, ...] = (1, 8), ttft_p95: float = 120.0) -> list[dict[str, Any]]:
    rows = []
    for load in loads:
        row: dict[str, Any] = {
            "model_id": record.model_id,
            "revision": record.revision,
            "scenario": record.scenario,
            "load_type": "concurrency",
            "load": float(load),
            "n_requests": 20,
            "n_failed": 0,
            "duration_s": 10.0,
            "output_tokens_per_s": 100.0 * load,
            "requests_per_s": 2.0 * load,
            "goodput": 1.0 if load == 1 else 0.95,
            "slo": '{"ttft_p95_ms": 500}',
            "gpu_hour_usd": 2.0,
            "gpu_count": 1,
            "usd_per_1m_output_tokens": 2.0 / (100.0 * load * 3600) * 1e6,
            **dict.fromkeys(LATENCY_LEVEL_EXTRA),  # client/server columns: none here
        }
        for i, metric in enumerate(LATENCY_METRICS):
            base = (ttft_p95 if metric == "ttft" else 10.0 * (i + 1)) * (1 + load / 10)
            row.update(
                {
                    f"{metric}_mean_ms": base * 0.8,
                    f"{metric}_p50_ms": base * 0.7,
                    f"{metric}_p90_ms": base * 0.95,
                    f"{metric}_p95_ms": base,
                    f"{metric}_p99_ms": base * 1.2,
                }
            )
        rows.append(row)
    return rows


def sample_rows(record: RunRecord, n: int = 20, load: float = 1.0) -> list[dict[str, Any]]:
    return [
        {
            "model_id": record.model_id,
            "revision": record.revision,
            "scenario": record.scenario,
            "load_type": "concurrency",
            "load": load,
            "request_index": i,
            "scheduled_s": i * 0.5,
            "sent_s": i * 0.5 + 0.001,
            "first_token_s": i * 0.5 + 0.1,
            "finished_s": i * 0.5 + 0.4,
            "prompt_tokens": 32,
            "output_tokens": 16,
            "itl_ms": [20.0] * 15,
            "ok": True,
            "error": None,
        }
        for i in range(n)
    ]


def all_tables(record: RunRecord, **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        "accuracy": accuracy_rows(record, kwargs.get("tasks")),
        "latency": latency_rows(record),
        "latency_samples": [row for load in (1, 8) for row in sample_rows(record, load=float(load))],
    }


def publish_run(warehouse: Warehouse, record: RunRecord, tables: dict[str, Any]) -> RunRecord:
    """Publish already-valid test rows with the gate's approval, without running great-expectations each time.

    Tests of the gate itself call ``validate_and_write``; this is for fixtures that need published history.
    """
    from evals.warehouse.approval import Approval
    from evals.warehouse.rows import conform_run_table

    conformed = {name: conform_run_table(name, frame, record) for name, frame in tables.items()}
    return warehouse.write_run(record, conformed, approval=Approval.issue(record.run_id, conformed))


def ok_request(index: int, sent: float, tokens: list[float], *, output_tokens: int | None = None) -> Any:
    """A successful streamed request (evals.latency.client.RequestResult) sent at ``sent``, tokens at ``tokens``."""
    from evals.latency.client import RequestResult

    return RequestResult(
        index=index,
        scheduled=sent,
        sent=sent,
        token_times=tokens,
        finished=tokens[-1],
        prompt_tokens=10,
        output_tokens=output_tokens if output_tokens is not None else len(tokens),
        usage_reported=True,
        ok=True,
    )
