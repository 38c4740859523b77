"""SLO-aware ranking on synthetic runs whose per-request SLO outcomes, and so the truth, are set by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from factories import accuracy_rows, latency_rows, run_record
from factories import publish_run as publish

from evals.analysis.leaderboard import leaderboard
from evals.analysis.measures import capacity, cost_per_1m, reference_level
from evals.analysis.ranking import slo_levels
from evals.warehouse import RunRecord, Warehouse
from evals.warehouse.views import connect

SLO_MS = 500.0
N, TOKENS, DURATION, PRICE = 20, 10, 10.0, 2.0


def _level(record: RunRecord, load: int, goodput: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A level of N requests of which round(goodput × N) have TTFT under the SLO (the rest 3× over it)."""
    meeting = round(goodput * N)
    (row,) = latency_rows(record, loads=(load,))
    row.update(goodput=meeting / N, slo=json.dumps({"ttft_p95_ms": SLO_MS}), duration_s=DURATION, gpu_hour_usd=PRICE)
    row.update(n_requests=N, output_tokens_per_s=N * TOKENS / DURATION)
    samples = []
    for i in range(N):
        ttft = 0.1 if i < meeting else 3 * SLO_MS / 1000
        samples.append(
            {
                "model_id": record.model_id,
                "revision": record.revision,
                "scenario": record.scenario,
                "load_type": "concurrency",
                "load": float(load),
                "request_index": i,
                "scheduled_s": i * 0.4,
                "sent_s": i * 0.4,
                "first_token_s": i * 0.4 + ttft,
                "finished_s": i * 0.4 + ttft + 0.2,
                "prompt_tokens": 32,
                "output_tokens": TOKENS,
                "itl_ms": [20.0] * (TOKENS - 1),
                "ok": True,
                "error": None,
            }
        )
    return row, samples


def _publish(wh: Warehouse, model: str, accuracy: float, goodputs: dict[int, float], **fields: Any) -> None:
    record = run_record(model, 1, **fields)
    latency, samples = [], []
    for load, share in goodputs.items():
        row, rows = _level(record, load, share)
        latency.append(row)
        samples += rows
    tables = {"accuracy": accuracy_rows(record, {"arc_easy": accuracy}), "latency": latency, "latency_samples": samples}
    publish(wh, record, tables)


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    wh = Warehouse(f"file://{tmp_path / 'wh'}")
    _publish(wh, "org/a", 0.7, {1: 1.0, 2: 0.95, 4: 0.5})
    _publish(wh, "org/b", 0.6, {1: 1.0, 2: 0.8, 4: 0.95})  # the SLO held again at 4: the highest level counts
    _publish(wh, "org/a", 0.4, {1: 1.0}, suite="nightly")  # another board: never replaces the smoke number
    return wh


def test_capacity_cost_and_slo_accuracy(wh: Warehouse) -> None:
    rows = {(r["model_id"], r["suite"]): r for r in leaderboard(connect(wh), rank_by="accuracy")}
    a, b = rows["org/a", "smoke"], rows["org/b", "smoke"]
    assert (a["capacity"], b["capacity"]) == (2.0, 4.0)
    # Only the 19 of 20 requests that met the SLO at capacity count as served tokens.
    assert a["slo_tokens_per_s"] == pytest.approx(19 * TOKENS / DURATION)
    assert a["usd_per_1m_at_slo"] == pytest.approx(PRICE / (19 * TOKENS / DURATION * 3600) * 1e6)
    assert a["slo_accuracy"] == pytest.approx(0.7 * 0.95) and b["slo_accuracy"] == pytest.approx(0.6 * 0.95)
    assert (a["reference_load"], a["ttft_p95_ms"]) == (
        1.0,
        latency_rows(run_record("org/a"), loads=(1,))[0]["ttft_p95_ms"],
    )
    assert rows["org/a", "nightly"]["accuracy"] == pytest.approx(0.4) and a["accuracy"] == pytest.approx(0.7)
    assert a["accuracy_mde"] == pytest.approx((1.959964 + 0.841621) * 2**0.5 * 0.01, rel=1e-5)


@pytest.mark.parametrize(
    ("rank_by", "order"),
    [("accuracy", ["org/a", "org/b"]), ("slo_accuracy", ["org/a", "org/b"]), ("capacity", ["org/b", "org/a"]),
     ("cost_at_slo", ["org/a", "org/b"])],
)  # fmt: skip
def test_rank_by(wh: Warehouse, rank_by: str, order: list[str]) -> None:
    board = [r for r in leaderboard(connect(wh), rank_by=rank_by) if r["suite"] == "smoke"]
    assert [r["model_id"] for r in board] == order and [r["rank"] for r in board] == [1, 2]
    nightly = [r for r in leaderboard(connect(wh), rank_by=rank_by, suite="nightly")]
    assert [r["model_id"] for r in nightly] == ["org/a"]


def test_equal_served_tokens_per_second_cost_the_same(wh: Warehouse) -> None:
    rows = {r["model_id"]: r for r in leaderboard(connect(wh), rank_by="cost_at_slo") if r["suite"] == "smoke"}
    # b serves 19 requests' tokens at concurrency 4 in the same 10 s as a at 2: the same cost per served token.
    assert rows["org/a"]["usd_per_1m_at_slo"] == pytest.approx(rows["org/b"]["usd_per_1m_at_slo"])


def test_reference_level_and_capacity_rules() -> None:
    config = json.dumps({"latency": {"scenario": {"levels": [{"concurrency": 2}, {"concurrency": 1}]}}})
    present = [("concurrency", 1.0), ("concurrency", 2.0), ("rate", 2.0)]
    assert reference_level(config, present) == ("concurrency", 2.0)
    assert reference_level(None, present) == ("concurrency", 1.0)
    assert reference_level(None, [("rate", 4.0), ("rate", 2.0)]) == ("rate", 2.0)
    assert cost_per_1m(2.0, 1, 0.0) is None and cost_per_1m(2.0, 2, 100.0) == pytest.approx(2 * 2 / 360000 * 1e6)
    assert capacity([], "concurrency", 0.9) is None


def test_requests_missing_the_slo_serve_no_tokens(wh: Warehouse) -> None:
    con = connect(wh)
    run = con.execute("select run_id, eval_date from runs where model_id = 'org/a' and suite = 'smoke'").fetchone()
    assert run is not None
    levels = slo_levels(con, {"run_id": run[0], "eval_date": run[1]})
    assert levels[("concurrency", 4.0)].slo_tokens_per_s == pytest.approx(10 * TOKENS / DURATION)


# ---------------------------------------------------------------------------------------------- uncertainty


def test_wilson_interval_covers_simulated_goodput() -> None:
    import numpy as np

    from evals.analysis.uncertainty import goodput_interval

    rng = np.random.default_rng(6)
    for n in (30, 100):
        for true in (0.8, 0.9, 0.95):
            met = rng.binomial(n, true, size=2000)
            covered = [low <= true <= high for low, high in (goodput_interval(m / n, n) for m in met)]
            rate = float(np.mean(covered))
            print(f"Wilson 95 % CI of goodput {true} from {n} requests: covers in {rate:.3f} of 2000")
            assert 0.92 <= rate <= 0.99


def test_capacity_status_follows_goodputs_ci_against_the_floor() -> None:
    from evals.analysis.uncertainty import capacity_status

    assert capacity_status([(1.0, 30), (0.9, 30)], 1, 0.9) == "indeterminate"  # 27/30: CI [0.74, 0.97]
    assert capacity_status([(1.0, 2000), (0.95, 2000)], 1, 0.9) == "held"
    assert capacity_status([(0.87, 30)], None, 0.9) == "indeterminate"  # below, but its CI reaches the floor
    assert capacity_status([(0.5, 30), (0.2, 30)], None, 0.9) == "none"


def _questions(rng: Any, accuracies: list[float], n: int) -> list[list[float]]:
    return [list((rng.random(n) < a).astype(float)) for a in accuracies]


def test_rank_intervals_contain_the_true_rank() -> None:
    import numpy as np

    from evals.analysis.uncertainty import headline_draws, rank_intervals

    accuracies = [0.80, 0.71, 0.70, 0.63, 0.62, 0.60]  # true ranks 1..6
    rng = np.random.default_rng(7)
    hits = total = 0
    for trial in range(100):
        scores = _questions(rng, accuracies, 500)
        draws = [headline_draws([(float(np.mean(s)), None, s)], seed=1000 * trial + i) for i, s in enumerate(scores)]
        for true_rank, (low, high) in enumerate(rank_intervals(draws), start=1):
            assert low is not None and high is not None
            hits += low <= true_rank <= high
            total += 1
    print(f"95 % rank intervals (6 models, 500 questions) contain the true rank in {hits / total:.3f} of {total}")
    assert hits / total >= 0.93


def test_overlapping_models_share_ranks_and_a_clear_leader_does_not() -> None:
    import numpy as np

    from evals.analysis.uncertainty import headline_draws, rank_intervals

    rng = np.random.default_rng(8)
    scores = _questions(rng, [0.90, 0.71, 0.70], 500)
    draws = [headline_draws([(float(np.mean(s)), None, s)], seed=i) for i, s in enumerate(scores)]
    leader, a, b = rank_intervals(draws)
    assert leader == (1, 1)
    assert a[1] > a[0] and b[1] > b[0]  # their CIs overlap: each interval spans more than one rank
    # Without per-question scores: a normal draw from the SE, the same conclusion.
    normal = [headline_draws([(v, 0.02, None)], seed=i) for i, v in enumerate([0.90, 0.71, 0.70])]
    assert rank_intervals(normal)[1][1] > rank_intervals(normal)[1][0]
    assert rank_intervals([None, *draws[1:]])[0] == (None, None)


def test_leaderboard_rows_carry_rank_intervals_and_capacity_status(wh: Warehouse) -> None:
    rows = leaderboard(connect(wh), rank_by="slo_accuracy")
    assert rows and all(r["rank_low"] <= r["rank"] <= r["rank_high"] for r in rows if r["rank"] is not None)
    assert {r["capacity_status"] for r in rows} <= {"held", "indeterminate", "none"}
    for r in rows:
        if r["capacity"] is not None:
            assert r["goodput_ci_low"] <= r["goodput_at_capacity"] <= r["goodput_ci_high"]
