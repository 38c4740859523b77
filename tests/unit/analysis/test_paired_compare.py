"""Paired comparisons through the warehouse: questions matched by document hash, flips, groups, fallbacks."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from analysis_history import accuracy_row
from factories import publish_run as publish
from factories import run_record, sha

from evals.analysis import paired
from evals.analysis.compare import compare_run
from evals.warehouse import RunRecord, Warehouse
from evals.warehouse.views import connect

SUBTASKS = {"mc_a": 40, "mc_b": 60}
LEAF = "arith"
LEAF_N = 50


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(f"file://{tmp_path / 'wh'}")


def _doc_hash(task: str, doc: int) -> str:
    return hashlib.sha256(f"{task}:{doc}".encode()).hexdigest()


def _tables(record: RunRecord, scores: dict[str, np.ndarray], *, order: int = 1) -> dict[str, list[dict[str, Any]]]:
    """accuracy + accuracy_samples of a group (mc_a, mc_b) and a leaf task; ``order=-1`` reverses doc ids."""
    samples, accuracy = [], []
    for task, values in scores.items():
        n = len(values)
        for doc in range(n):
            doc_id = doc if order == 1 else n - 1 - doc
            samples.append(
                {
                    "model_id": record.model_id,
                    "revision": record.revision,
                    "suite": record.suite,
                    "task": task,
                    "doc_id": doc_id,
                    "doc_hash": _doc_hash(task, doc),
                    "prompt_hash": None,
                    "target_hash": None,
                    "metric": "acc",
                    "filter": "none",
                    "aggregation": "mean",
                    "value": float(values[doc]),
                    "response": f"choice {int(values[doc])}",
                    "target": "choice 1",
                }
            )
        parent = "grp" if task in SUBTASKS else None
        accuracy.append(accuracy_row(record, task, float(values.mean()), n, group=parent, task_version="1"))
    group = np.concatenate([scores[t] for t in SUBTASKS])
    accuracy.append(accuracy_row(record, "grp", float(group.mean()), len(group), task_version="1"))
    return {"accuracy": accuracy, "accuracy_samples": samples}


def _scores(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t: (rng.random(n) < 0.6).astype(float) for t, n in {**SUBTASKS, LEAF: LEAF_N}.items()}


def _publish(
    wh: Warehouse, day: int, scores: dict[str, np.ndarray], *, revision: str = "r1", order: int = 1
) -> RunRecord:
    record = run_record("org/a", day, revision=sha(revision), scenario=None, scenario_version=None)
    return publish(wh, record, _tables(record, scores, order=order))


def _by_metric(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["metric"]: r for r in rows}


def test_same_checkpoint_twice_is_paired_with_zero_delta_and_no_flips(wh: Warehouse) -> None:
    scores = _scores(0)
    _publish(wh, 1, scores)
    tonight = _publish(wh, 2, {k: v.copy() for k, v in scores.items()}, order=-1)  # same answers, docs reordered
    rows = _by_metric(compare_run(tonight.run_id, warehouse=wh, baselines=[]))
    for metric in ("accuracy:headline", "accuracy:grp/acc", "accuracy:mc_a/acc", f"accuracy:{LEAF}/acc"):
        row = rows[metric]
        assert row["method"] == ("stratified" if metric == "accuracy:grp/acc" else "paired"), metric
        assert (row["delta"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0), metric
        assert (row["n_fixed"], row["n_broken"]) == (0, 0), metric
        assert row["verdict"] == "equivalent", metric  # same answers: a CI of [0, 0] inside the 1-point margin
        assert row["mde"] > 0.05  # planned with the binomial variance: identical answers claim no unlimited power
    assert rows["accuracy:grp/acc"]["n_pairs"] == sum(SUBTASKS.values())
    assert rows["accuracy:headline"]["n_pairs"] == sum(SUBTASKS.values()) + LEAF_N
    con = connect(wh)
    runs = {r[0]: r for r in con.execute("select run_id, eval_date from runs").fetchall()}
    run = {"run_id": tonight.run_id, "eval_date": runs[tonight.run_id][1]}
    (base_id,) = set(runs) - {tonight.run_id}
    assert paired.flips(con, run, {"run_id": base_id, "eval_date": runs[base_id][1]}) == []


def test_injected_flips_are_counted_each_way_and_listed(wh: Warehouse) -> None:
    before = _scores(1)
    after = {k: v.copy() for k, v in before.items()}
    right, wrong = np.flatnonzero(after[LEAF] == 1.0), np.flatnonzero(after[LEAF] == 0.0)
    after[LEAF][right[:7]] = 0.0  # 7 broken
    after[LEAF][wrong[:2]] = 1.0  # 2 fixed
    base = _publish(wh, 1, before)
    tonight = _publish(wh, 2, after, revision="r2", order=-1)
    rows = _by_metric(compare_run(tonight.run_id, warehouse=wh, baselines=[]))
    leaf = rows[f"accuracy:{LEAF}/acc"]
    assert (leaf["n_pairs"], leaf["n_fixed"], leaf["n_broken"]) == (LEAF_N, 2, 7)
    assert leaf["delta"] == pytest.approx(-5 / LEAF_N, abs=1e-15)
    d = after[LEAF] - before[LEAF]
    from scipy.stats import t

    half = t.ppf(0.975, LEAF_N - 1) * d.std(ddof=1) / math.sqrt(LEAF_N)
    assert (leaf["ci_low"], leaf["ci_high"]) == pytest.approx((-0.1 - half, -0.1 + half))
    from scipy.stats import binomtest

    assert leaf["p_value"] == pytest.approx(binomtest(2, 9, 0.5).pvalue)
    assert rows["accuracy:grp/acc"]["delta"] == 0.0

    con = connect(wh)
    dates = dict(con.execute("select run_id, eval_date from runs").fetchall())
    listed = paired.flips(
        con,
        {"run_id": tonight.run_id, "eval_date": dates[tonight.run_id]},
        {"run_id": base.run_id, "eval_date": dates[base.run_id]},
    )
    assert sorted(f["change"] for f in listed) == ["broken"] * 7 + ["fixed"] * 2
    assert {(f["response"], f["baseline_response"]) for f in listed if f["change"] == "broken"} == {
        ("choice 0", "choice 1")
    }


def test_runs_without_samples_fall_back_to_unpaired_and_say_so(wh: Warehouse) -> None:
    scores = _scores(2)
    for day in (1, 2):
        record = run_record("org/a", day, revision=sha("r1"), scenario=None, scenario_version=None)
        publish(wh, record, {"accuracy": _tables(record, scores)["accuracy"]})
    tonight = run_record("org/a", 2, revision=sha("r1"), scenario=None, scenario_version=None)
    rows = _by_metric(compare_run(tonight.run_id, warehouse=wh, baselines=[]))
    leaf = rows[f"accuracy:{LEAF}/acc"]
    assert leaf["method"] == "unpaired" and leaf["n_pairs"] is None
    # Both nights scored the same: the SE of the difference is √2 × the stored stderr.
    se = math.sqrt(2 * leaf["value"] * (1 - leaf["value"]) / (LEAF_N - 1))
    assert leaf["mde"] == pytest.approx((1.959963984540054 + 0.8416212335729143) * se)
    assert rows["accuracy:headline"]["method"] == "unpaired"


def test_group_se_is_clustered_by_subtask() -> None:
    rng = np.random.default_rng(3)
    a = {"mc_a": rng.random(40) < 0.5, "mc_b": rng.random(60) < 0.5}
    matches = {(t, "acc", "none"): {"value": v.astype(float), "baseline": (~v).astype(float)} for t, v in a.items()}
    pairs = paired.pairs_for("grp", "acc", "none", matches, {"grp": ["mc_a", "mc_b"]})
    assert pairs is not None and pairs.cluster is not None
    assert sorted(np.bincount(pairs.cluster)) == [40, 60]
    assert paired.pairs_for("nothing", "acc", "none", matches, {}) is None
