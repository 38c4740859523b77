"""accuracy_samples from a real lm-eval run (tiny checkpoint, hf backend, offline) against lm-eval's own samples."""

import datetime as dt
import math
from collections import defaultdict
from pathlib import Path

import pytest

from evals.accuracy import load_suite, run_suite
from evals.accuracy.suites import task_manager
from evals.pipeline.evaluate import merge
from evals.settings import get_settings
from evals.validation import validate
from evals.warehouse import RunRecord

pytestmark = pytest.mark.integration

REVISION = "1" * 40
LIMIT = 6


def test_sample_rows_match_lm_evals_own_samples_and_pass_the_gate(tiny_model_dir: Path, tmp_path: Path) -> None:
    from lm_eval import simple_evaluate

    settings = get_settings(cache_dir=tmp_path / "cache", accuracy_device="cpu", accuracy_progress="log")
    result = run_suite(tiny_model_dir, "smoke", model_id="test/tiny", revision=REVISION, limit=LIMIT, settings=settings)
    suite = load_suite("smoke")
    seeds = suite.seeds
    direct = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny_model_dir), "dtype": "float32"},
        tasks=suite.tasks,
        batch_size=suite.batch_size,
        device="cpu",
        limit=LIMIT,
        bootstrap_iters=suite.bootstrap_iters,
        task_manager=task_manager(suite),
        log_samples=True,
        random_seed=seeds.random,
        numpy_random_seed=seeds.numpy,
        torch_random_seed=seeds.torch,
        fewshot_random_seed=seeds.fewshot,
    )
    assert direct is not None
    # lm-eval's own per-document scores, keyed as the table keys them.
    truth: dict[tuple[str, str, str], dict[int, tuple[str, float]]] = defaultdict(dict)
    for task, samples in direct["samples"].items():
        for s in samples:
            for metric in s["metrics"]:
                if isinstance(s[metric], bool | int | float):
                    truth[task, metric, s["filter"]][s["doc_id"]] = (s["doc_hash"], float(s[metric]))
    ours: dict[tuple[str, str, str], dict[int, tuple[str, float]]] = defaultdict(dict)
    for row in result.sample_rows:
        ours[row["task"], row["metric"], row["filter"]][row["doc_id"]] = (row["doc_hash"], row["value"])
    assert ours == truth
    assert ("bigbench_arithmetic_1d_add", "exact_match", "strict-match") in ours  # generation
    assert any(key[0].startswith("bigbench_general") for key in ours)  # a multiple-choice subtask of the group

    # Mean-aggregated metrics: the mean of the documents' scores is lm-eval's aggregate (to 1e-12).
    for (task, metric, filter_), docs in ours.items():
        aggregate = direct["results"][task][f"{metric},{filter_}"]
        assert math.fsum(v for _, v in docs.values()) / len(docs) == pytest.approx(aggregate, abs=1e-12)
    assert {r["response"][:7] for r in result.sample_rows if r["task"].startswith("bigbench_general")} == {"choice "}

    outcome = merge(result, None)
    record = RunRecord(
        model_id="test/tiny",
        revision=REVISION,
        logical_date=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        source="local",
        **{k: v for k, v in outcome.record_fields.items() if k != "started_at"},
        suite="smoke",
        suite_version=suite.version,
    )
    report, conformed = validate(record, outcome.tables, expected=outcome.expected, settings=settings)
    assert report.success, report.summary()
    assert conformed["accuracy_samples"].num_rows == sum(outcome.expected.samples.values())
