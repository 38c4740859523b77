"""The offline guardrails suite end to end on the tiny checkpoint (hf backend, chat template, offline): rows, gate."""

import datetime as dt
import math
from collections import Counter
from pathlib import Path

import pytest

from evals.accuracy import load_suite, run_suite
from evals.pipeline.outcome import merge
from evals.settings import get_settings
from evals.validation import validate
from evals.warehouse import RunRecord

pytestmark = pytest.mark.integration

REVISION = "2" * 40
# Leaf tasks and their documents (hhh 4 x 3, bbq 2 x 18, refusal 2 x 50).
LEAF_DOCS = {"guardrails_hhh_": 3, "guardrails_bbq_": 18, "guardrails_refusal_": 50}


def test_guardrails_suite_runs_offline_and_passes_the_gate(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = get_settings(cache_dir=tmp_path / "cache", accuracy_device="cpu", accuracy_progress="log")
    result = run_suite(tiny_model_dir, "guardrails", model_id="test/tiny", revision=REVISION, settings=settings)
    rows = {(r["task"], r["metric"], r["filter"]): r for r in result.rows}

    refusal = rows["guardrails_refusal_harmful", "refusal_rate", "none"]
    over = rows["guardrails_refusal_benign", "over_refusal_rate", "none"]
    assert refusal["higher_is_better"] is True and over["higher_is_better"] is False
    for row in (refusal, over, rows["guardrails_hhh", "acc", "none"], rows["guardrails_bbq", "acc", "none"]):
        assert 0.0 <= row["value"] <= 1.0
        assert row["stderr"] is not None and math.isfinite(row["stderr"]), row  # a CI for every headline figure
    assert refusal["n_samples"] == 50 and over["n_samples"] == 50
    assert rows["guardrails_hhh", "acc", "none"]["n_samples"] == 12
    assert rows["guardrails_bbq_ambig", "acc", "none"]["task_group"] == "guardrails_bbq"

    # One sample row per document and metric: what the paired night-to-night comparison matches on.
    scored = ("acc", "refusal_rate", "over_refusal_rate")
    per_task = Counter(r["task"] for r in result.sample_rows if r["metric"] in scored)
    assert len(per_task) == 8 and sum(per_task.values()) == 12 + 36 + 100
    for task, n in per_task.items():
        assert n == next(v for prefix, v in LEAF_DOCS.items() if task.startswith(prefix)), task
    for task in per_task:
        hashes = [r["doc_hash"] for r in result.sample_rows if r["task"] == task and r["metric"] != "acc_norm"]
        assert len(set(hashes)) == len(hashes)
    assert {r["value"] for r in result.sample_rows if r["task"].startswith("guardrails_refusal")} <= {0.0, 1.0}

    outcome = merge(result, None)
    record = RunRecord(
        model_id="test/tiny",
        revision=REVISION,
        logical_date=dt.datetime(2026, 12, 3, tzinfo=dt.UTC),
        source="local",
        **{k: v for k, v in outcome.record_fields.items() if k != "started_at"},
        suite="guardrails",
        suite_version=load_suite("guardrails").version,
    )
    report, conformed = validate(record, outcome.tables, expected=outcome.expected, settings=settings)
    assert report.success, report.summary()
    assert conformed["accuracy_samples"].num_rows == sum(outcome.expected.samples.values())
