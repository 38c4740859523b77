"""Change points across nights on series with a known step (or none), and how rows label their cause."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from factories import accuracy_rows, run_record, sha
from factories import publish_run as publish

from evals.analysis.changepoints import ChangePointOptions, detect, detect_and_store, latest_change_points, rows_for
from evals.warehouse import Warehouse
from evals.warehouse.views import connect

NIGHTS, STEP_AT, STEP, NOISE = 60, 40, 0.15, 0.03
SEEDS = 400


def _series(seed: int, step: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = np.where(np.arange(NIGHTS) >= STEP_AT, 1.0 + step, 1.0)
    return 0.6 * level * (1 + NOISE * rng.standard_normal(NIGHTS))


def test_a_15_percent_step_at_night_40_is_found_there() -> None:
    found = []
    for seed in range(SEEDS):
        changes = detect(list(_series(seed, STEP)))
        found.append(any(abs(c.index - STEP_AT) <= 1 for c in changes))
    rate = float(np.mean(found))
    print(f"step found at night 40±1 in {rate:.3f} of {SEEDS} seeds")
    assert rate >= 0.95


def test_a_series_without_a_step_has_no_change_point() -> None:
    quiet = float(np.mean([not detect(list(_series(seed + 10_000, 0.0))) for seed in range(SEEDS)]))
    print(f"no change point in {quiet:.3f} of {SEEDS} step-free seeds")
    assert quiet >= 0.95


def test_a_found_change_carries_means_sizes_and_significance() -> None:
    values = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01] * 4 + [1.2, 1.21, 1.19, 1.2, 1.22, 1.18, 1.2, 1.21] * 2
    (change,) = detect(values)
    assert (change.index, change.n_before, change.n_after) == (32, 32, 16)
    assert change.mean_before == pytest.approx(np.mean(values[:32]))
    assert change.mean_after == pytest.approx(np.mean(values[32:]))
    assert change.relative_change == pytest.approx(np.mean(values[32:]) / np.mean(values[:32]) - 1)
    assert change.p_value < 1e-3
    assert detect(values[:4]) == []  # too short to tell


def _runs(revisions: list[str], vllm: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": f"run{i}",
            "model_id": "org/a",
            "revision": rev,
            "eval_date": dt.date(2026, 1, 1) + dt.timedelta(days=i),
            "suite": "smoke",
            "scenario": "smoke",
            "versions": {"vllm": v, "torch": "2.13.0"},
            "hardware": {"gpu_name": "H100"},
            "backend": "vllm",
            "dtype": "bfloat16",
            "config_hash": "c",
            "suite_version": "1",
            "scenario_version": "1",
        }
        for i, (rev, v) in enumerate(zip(revisions, vllm, strict=True))
    ]


def test_a_change_without_a_new_revision_is_a_serving_stack_change() -> None:
    values = list(_series(1, STEP))
    runs = _runs(["r1"] * NIGHTS, ["0.30.0"] * STEP_AT + ["0.30.1"] * (NIGHTS - STEP_AT))
    (row,) = rows_for(runs, {"latency:ttft_p95_ms@concurrency=1": values}, ChangePointOptions())
    assert row["cause"] == "serving_stack" and row["revision_moved"] is False
    assert json.loads(row["provenance_diff"]) == {"versions.vllm": ["0.30.0", "0.30.1"]}
    assert row["night"] == runs[STEP_AT]["eval_date"] and row["run_id"] == "run59"
    moved = _runs(["r1"] * STEP_AT + ["r2"] * (NIGHTS - STEP_AT), ["0.30.0"] * NIGHTS)
    (row,) = rows_for(moved, {"accuracy:headline": values}, ChangePointOptions())
    assert row["cause"] == "revision" and json.loads(row["provenance_diff"]) == {}


def test_missing_nights_are_skipped_not_zero() -> None:
    values: list[float | None] = [float(v) for v in _series(2, STEP)]
    values[10] = values[45] = None
    runs = _runs(["r1"] * NIGHTS, ["v"] * NIGHTS)
    (row,) = rows_for(runs, {"s": values}, ChangePointOptions())
    assert abs((row["night"] - runs[STEP_AT]["eval_date"]).days) <= 1


def test_detect_and_store_writes_onto_each_groups_latest_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wh = Warehouse(f"file://{tmp_path / 'wh'}")
    for night, value in enumerate(_series(3, STEP)[:48]):
        day = dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC) + dt.timedelta(days=night)
        record = run_record("org/a", 1, logical_date=day, revision=sha("r1"), scenario=None, scenario_version=None)
        publish(wh, record, {"accuracy": accuracy_rows(record, {"arc_easy": float(value)})})
    summary = detect_and_store(warehouse=wh)
    assert summary["change_points"] == 1 and summary["by_cause"] == {"serving_stack": 1}
    (row,) = latest_change_points(connect(wh))
    assert row["series"] == "accuracy:headline" and abs(row["night"] - dt.date(2026, 2, 10)) <= dt.timedelta(days=1)
    assert summary == detect_and_store(warehouse=wh)  # a rerun replaces, never duplicates
    assert len(latest_change_points(connect(wh))) == 1
