"""lm-eval's logged samples -> accuracy_samples rows: one per (task, doc, metric, filter), numbers only, short texts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from evals.accuracy.normalize import sample_counts, sample_rows
from evals.conformance import conform
from evals.schemas import SAMPLE_TEXT_CHARS


def _mc(doc_id: int, right: bool) -> dict[str, Any]:
    lls = [(-1.0, False), (-0.5, True), (-3.0, False)] if right else [(-0.2, True), (-0.5, False), (-3.0, False)]
    return {
        "doc_id": doc_id,
        "doc": {"q": doc_id},
        "target": 1,
        "filtered_resps": lls,
        "filter": "none",
        "metrics": ["acc", "acc_norm"],
        "doc_hash": f"h{doc_id}",
        "prompt_hash": "p",
        "target_hash": "t",
        "acc": 1.0 if right else 0.0,
        "acc_norm": right,
    }


def _gen(doc_id: int, filter_: str, answer: str) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "target": "4",
        "filtered_resps": [answer],
        "filter": filter_,
        "metrics": ["exact_match", "bleu"],
        "doc_hash": f"g{doc_id}",
        "exact_match": float(answer == "4"),
        "bleu": (["4"], [answer]),  # corpus-level: not a per-document number
    }


RESULTS = {
    "samples": {
        "mc": [_mc(0, True), _mc(1, False)],
        "gen": [_gen(0, "strict", "4"), _gen(0, "flex", "x" * 1000), _gen(1, "strict", "5"), _gen(1, "flex", "4")],
    },
    "configs": {"mc": {"metric_list": [{"metric": "acc", "aggregation": "mean"}, {"metric": "acc_norm"}]}},
}


def test_one_row_per_document_metric_and_filter() -> None:
    rows = sample_rows(RESULTS, model_id="m", revision="r", suite="s")
    keys = sorted((r["task"], r["doc_id"], r["metric"], r["filter"]) for r in rows)
    assert keys == sorted(
        [("mc", d, m, "none") for d in (0, 1) for m in ("acc", "acc_norm")]
        + [("gen", d, "exact_match", f) for d in (0, 1) for f in ("strict", "flex")]
    )
    assert sample_counts(RESULTS) == {
        ("mc", "acc", "none"): 2,
        ("mc", "acc_norm", "none"): 2,
        ("gen", "exact_match", "strict"): 2,
        ("gen", "exact_match", "flex"): 2,
    }


def test_values_texts_hashes_and_aggregation() -> None:
    rows = {
        (r["task"], r["doc_id"], r["metric"], r["filter"]): r
        for r in sample_rows(RESULTS, model_id="m", revision="r", suite="s")
    }
    right, wrong = rows["mc", 0, "acc", "none"], rows["mc", 1, "acc_norm", "none"]
    assert (right["value"], right["response"], right["target"], right["doc_hash"]) == (1.0, "choice 1", "1", "h0")
    assert (wrong["value"], wrong["response"], wrong["aggregation"]) == (0.0, "choice 0", "mean")  # default: mean
    long = rows["gen", 0, "exact_match", "flex"]
    assert long["response"] == "x" * SAMPLE_TEXT_CHARS and long["aggregation"] is None
    table = conform(
        "accuracy_samples", [{**r, "run_id": "x", "eval_date": dt.date(2026, 12, 1)} for r in rows.values()]
    )
    assert table.num_rows == 8


def test_no_samples_no_rows() -> None:
    assert sample_rows({}, model_id="m", revision="r", suite="s") == [] and sample_counts({}) == {}
