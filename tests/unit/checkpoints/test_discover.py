"""Watermark discovery against a real (file://) warehouse: idempotence, retries of failures, error isolation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from factories import publish_run

from evals.checkpoints.discover import discover
from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.testing import make_checkpoint
from evals.checkpoints.watchlist import EvaluateSpec, parse_watchlist
from evals.settings import Settings
from evals.warehouse import RunRecord, Warehouse


def _record(ref: CheckpointRef, day: int, **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "model_id": ref.model_id,
        "revision": ref.revision,
        "source": ref.source,
        "logical_date": dt.datetime(2026, 11, day, 2, tzinfo=dt.UTC),
        "suite": "core",
        "suite_version": "1",
        "scenario": "chat",
        "scenario_version": "1",
    }
    values.update(fields)
    return RunRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    for index, name in enumerate(["org/a", "org/b", "org/c"]):
        make_checkpoint(root / name, seed=index + 1)
    return root


def _watchlist(models: Path, **evaluate: object) -> object:
    return parse_watchlist({"evaluate": evaluate, "sources": [{"source": "local", "path": str(models)}]})


def test_discovery_is_idempotent_and_skips_evaluated_refs(settings: Settings, models: Path) -> None:
    warehouse = Warehouse(settings.warehouse, settings)
    watchlist = _watchlist(models, suite="core")
    first = discover(watchlist, settings=settings, warehouse=warehouse)  # type: ignore[arg-type]
    assert [r.model_id for r in first.new] == ["org/a", "org/b", "org/c"]
    assert discover(watchlist, settings=settings, warehouse=warehouse).new == first.new  # type: ignore[arg-type]

    a, b, c = first.new
    publish_run(warehouse, _record(a, 1), {})
    warehouse.write_run(_record(b, 1), {}, status="quarantined")
    publish_run(warehouse, _record(c, 1, suite="other"), {})
    again = discover(watchlist, settings=settings, warehouse=warehouse)  # type: ignore[arg-type]
    assert again.new == [c] and again.already_evaluated == 2
    assert discover(watchlist, settings=settings, warehouse=warehouse).new == [c]  # type: ignore[arg-type]
    # Keyword overrides beat the watch-list's evaluate block.
    assert discover(watchlist, settings=settings, warehouse=warehouse, suite="other").new == [a, b]  # type: ignore[arg-type]
    # Without a suite in the watermark, any run of the ref counts.
    assert discover(_watchlist(models), settings=settings, warehouse=warehouse).new == []  # type: ignore[arg-type]
    # A new revision of an evaluated model is new again.
    make_checkpoint(models / "org" / "a", seed=42)
    fresh = discover(watchlist, settings=settings, warehouse=warehouse)  # type: ignore[arg-type]
    assert [r.model_id for r in fresh.new] == ["org/a", "org/c"] and fresh.new[0].revision != a.revision


def test_failed_refs_are_retried_up_to_max_attempts_then_reported(settings: Settings, models: Path) -> None:
    warehouse = Warehouse(settings.warehouse, settings)
    watchlist = _watchlist(models, max_attempts=2)
    a = discover(watchlist, settings=settings, warehouse=warehouse).new[0]  # type: ignore[arg-type]
    warehouse.record_failure(_record(a, 1), "OOM on day 1")
    assert a in discover(watchlist, settings=settings, warehouse=warehouse).new  # type: ignore[arg-type]
    warehouse.record_failure(_record(a, 1), "OOM on day 1, rerun")  # same run key: still one failure
    assert a in discover(watchlist, settings=settings, warehouse=warehouse).new  # type: ignore[arg-type]
    warehouse.record_failure(_record(a, 2), "OOM on day 2")
    result = discover(watchlist, settings=settings, warehouse=warehouse)  # type: ignore[arg-type]
    assert a not in result.new
    assert [(e.ref, e.failures, e.last_error) for e in result.exhausted] == [(a, 2, "OOM on day 2")]
    # Default max attempts comes from settings (3): one more try is allowed there.
    relaxed = discover(_watchlist(models), settings=settings, warehouse=warehouse)  # type: ignore[arg-type]
    assert a in relaxed.new
    # A later success wins over failures.
    publish_run(warehouse, _record(a, 3), {})
    assert a not in discover(watchlist, settings=settings, warehouse=warehouse).new  # type: ignore[arg-type]


def test_a_broken_entry_does_not_hide_the_others(settings: Settings, models: Path, tmp_path: Path) -> None:
    watchlist = parse_watchlist(
        {
            "sources": [
                {"source": "local", "path": str(tmp_path / "missing")},
                {"source": "hf", "model_id": "org/x", "colour": 1},
                {"source": "local", "path": str(models)},
                {"source": "local", "path": str(models)},  # duplicates collapse
            ]
        }
    )
    result = discover(watchlist, settings=settings, evaluate=EvaluateSpec())
    assert [r.model_id for r in result.new] == ["org/a", "org/b", "org/c"]
    assert [e.entry for e in result.errors] == ["sources[1]", "sources[0] (local)"]
    assert "is not a directory" in result.errors[1].message
    assert result.to_dict()["errors"][0]["entry"] == "sources[1]"
