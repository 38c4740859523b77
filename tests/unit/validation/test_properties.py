"""Property: generated valid runs always publish; the same runs with one corrupted cell always quarantine."""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from factories import run_record
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from unit.validation.validation_cases import warehouse_at

from evals.errors import ValidationFailed
from evals.schemas import LATENCY_LEVEL_EXTRA, LATENCY_METRICS
from evals.validation import Expected, validate_and_write
from evals.warehouse import RunRecord, Warehouse

# GX takes ~0.5-1 s per run on 2 cores: a handful of examples each keeps this file under ~30 s.
EXAMPLES = 5

Tables = dict[str, list[dict[str, Any]]]


@contextlib.contextmanager
def fresh_warehouse() -> Iterator[Warehouse]:
    """One per example: examples may repeat a run_id, and an earlier example's run must not count."""
    with tempfile.TemporaryDirectory() as root:
        yield warehouse_at(f"file://{root}/warehouse")


# Shrinking reruns GX hundreds of times (minutes); the failing example as generated is readable enough.
PROPERTY_SETTINGS = settings(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def runs(draw: st.DrawFn) -> tuple[RunRecord, Tables, Expected]:
    record = run_record(day=draw(st.integers(1, 28)), model_id=f"org/m{draw(st.integers(0, 10**6))}")
    keys = {"model_id": record.model_id, "revision": record.revision}
    finite = {"allow_nan": False, "allow_infinity": False}

    tasks = draw(
        st.lists(st.sampled_from(["arc_easy", "hellaswag", "gsm8k", "wikitext"]), min_size=1, max_size=3, unique=True)
    )
    accuracy, n_samples, metrics = [], {}, {}
    for task in tasks:
        n_samples[task] = draw(st.integers(1, 5000))
        metrics[task] = (
            ["word_perplexity"]
            if task == "wikitext"
            else draw(
                st.lists(st.sampled_from(["acc", "acc_norm", "exact_match"]), min_size=1, max_size=2, unique=True)
            )
        )
        for metric in metrics[task]:
            bounded = metric != "word_perplexity"
            accuracy.append(
                {
                    **keys,
                    "suite": record.suite,
                    "task": task,
                    "task_group": None,
                    "task_version": "1",
                    "metric": metric,
                    "filter": "none",
                    "value": draw(st.floats(0, 1, **finite) if bounded else st.floats(1, 1e6, **finite)),
                    "stderr": draw(st.none() | st.floats(0, 1, **finite)),
                    "n_samples": n_samples[task],
                    "num_fewshot": 0,
                    "higher_is_better": bounded,
                }
            )

    loads = draw(st.lists(st.sampled_from([1.0, 2.0, 4.0, 8.0, 16.0]), min_size=1, max_size=3, unique=True))
    latency, samples, requests = [], [], {}
    for load in loads:
        n = draw(st.integers(1, 30))
        failed = draw(st.integers(0, int(n * 0.05)))
        requests[("concurrency", load)] = n
        row: dict[str, Any] = {
            **keys,
            "scenario": record.scenario,
            "load_type": "concurrency",
            "load": load,
            "n_requests": n,
            "n_failed": failed,
            "duration_s": draw(st.floats(0.1, 1e4, **finite)),
            "output_tokens_per_s": draw(st.floats(0.01, 1e6, **finite)),
            "requests_per_s": draw(st.floats(0.01, 1e4, **finite)),
            "goodput": draw(st.none() | st.floats(0, 1)),
            "slo": None,
            "gpu_hour_usd": None,
            "gpu_count": None,
            "usd_per_1m_output_tokens": None,
            **dict.fromkeys(LATENCY_LEVEL_EXTRA),
        }
        for metric in LATENCY_METRICS:
            low = 0.0 if metric == "itl" else 0.01
            p50, p90, p95, p99 = sorted(draw(st.lists(st.floats(low, 1e5, **finite), min_size=4, max_size=4)))
            mean = draw(st.floats(max(low, 0.01), 1e5, **finite))
            row.update(
                {
                    f"{metric}_mean_ms": mean,
                    f"{metric}_p50_ms": p50,
                    f"{metric}_p90_ms": p90,
                    f"{metric}_p95_ms": p95,
                    f"{metric}_p99_ms": p99,
                }
            )
        latency.append(row)
        for i in range(n):
            sent = draw(st.floats(0, 1e3, **finite))
            first, end = sorted(draw(st.lists(st.floats(sent, sent + 100, **finite), min_size=2, max_size=2)))
            ok = i >= failed
            samples.append(
                {
                    **keys,
                    "scenario": record.scenario,
                    "load_type": "concurrency",
                    "load": load,
                    "request_index": i,
                    "scheduled_s": sent,
                    "sent_s": sent,
                    "first_token_s": first if ok else None,
                    "finished_s": end,
                    "prompt_tokens": 8,
                    "output_tokens": 4 if ok else 0,
                    "itl_ms": [1.0, 2.0, 3.0] if ok else [],
                    "ok": ok,
                    "error": None if ok else "timeout",
                }
            )
    keys_reported = {task: [f"{metric},none" for metric in names] for task, names in metrics.items()}
    expected = Expected(n_samples=n_samples, metrics=keys_reported, requests=requests)
    return record, {"accuracy": accuracy, "latency": latency, "latency_samples": samples}, expected


def _corrupt_bounded(tables: Tables, pick: int) -> None:
    rows = [r for r in tables["accuracy"] if r["metric"] != "word_perplexity"]
    if not rows:
        tables["accuracy"][pick % len(tables["accuracy"])]["n_samples"] = 0
        return
    rows[pick % len(rows)]["value"] = 1.3


def _cell(table: str, column: str, value: Any) -> Any:
    def corrupt(tables: Tables, pick: int) -> None:
        tables[table][pick % len(tables[table])][column] = value

    return corrupt


def _percentile_order(tables: Tables, pick: int) -> None:
    row = tables["latency"][pick % len(tables["latency"])]
    row["e2e_p99_ms"] = row["e2e_p50_ms"] / 2 if row["e2e_p50_ms"] > 0 else -1.0


def _sample_order(tables: Tables, pick: int) -> None:
    row = tables["latency_samples"][pick % len(tables["latency_samples"])]
    row["finished_s"] = row["sent_s"] - 1.0


def _all_failed(tables: Tables, pick: int) -> None:
    row = tables["latency"][pick % len(tables["latency"])]
    row["n_failed"] = row["n_requests"]


CORRUPTIONS = {
    "acc above 1": _corrupt_bounded,
    "NaN percentile": _cell("latency", "ttft_p95_ms", math.nan),
    "inf percentile": _cell("latency", "e2e_p90_ms", math.inf),
    "zero throughput": _cell("latency", "output_tokens_per_s", 0.0),
    "negative stderr": _cell("accuracy", "stderr", -0.5),
    "inf stderr": _cell("accuracy", "stderr", math.inf),
    "n_samples off": _cell("accuracy", "n_samples", 10**7),
    "negative tokens": _cell("latency_samples", "prompt_tokens", -1),
    "p99 below p50": _percentile_order,
    "finished before sent": _sample_order,
    "all requests failed": _all_failed,
    "foreign model": _cell("latency_samples", "model_id", "org/other"),
}


@settings(PROPERTY_SETTINGS, max_examples=EXAMPLES)
@given(run=runs())
def test_valid_runs_always_publish(run: tuple[RunRecord, Tables, Expected]) -> None:
    record, tables, expected = run
    with fresh_warehouse() as wh:
        written = validate_and_write(record, tables, expected=expected, warehouse=wh)
        assert written.status == "published"
        assert wh.find_run(record.run_id, area="published") is not None


@settings(PROPERTY_SETTINGS, max_examples=2 * EXAMPLES)
@given(run=runs(), kind=st.sampled_from(sorted(CORRUPTIONS)), pick=st.integers(0, 1000))
def test_one_corrupted_cell_always_quarantines(run: tuple[RunRecord, Tables, Expected], kind: str, pick: int) -> None:
    record, tables, expected = run
    CORRUPTIONS[kind](tables, pick)
    with fresh_warehouse() as wh:
        with pytest.raises(ValidationFailed):
            validate_and_write(record, tables, expected=expected, warehouse=wh)
        assert wh.find_run(record.run_id, area="published") is None
        kept = wh.find_run(record.run_id, area="quarantine")
        assert kept is not None and kept.status == "quarantined" and kept.error
