"""The figure module and what it reads: Pareto frontier, quantile CIs with known truth, optional tables."""

import math
from pathlib import Path

import duckdb
import numpy as np
import pytest
from analysis_history import publish_night
from factories import publish_run

from evals.report import figure_data, figures
from evals.warehouse import Warehouse
from evals.warehouse.views import connect


def test_pareto_frontier() -> None:
    # (latency, accuracy): lower latency and higher accuracy are better.
    points = [(100.0, 0.5), (200.0, 0.7), (150.0, 0.4), (300.0, 0.7), (50.0, 0.3)]
    assert figures.pareto_frontier(points) == [4, 0, 1]


def test_p95_confidence_interval_covers_the_true_p95() -> None:
    """The order-statistic CI of the P95, over 400 lognormal samples of 300 requests each: ~95 % coverage."""
    rng = np.random.default_rng(5)
    sigma, n, reps = 0.35, 300, 400
    true_p95 = 100.0 * math.exp(sigma * 1.6448536269514722)
    values = 100.0 * np.exp(sigma * rng.standard_normal((reps, n)))
    con = duckdb.connect()
    con.register("t", {"rep": np.repeat(np.arange(reps), n), "x": values.ravel()})
    rows = con.execute(
        f"select {figure_data._quantile_ci('xs', 'n', 0.95)} from "
        "(select rep, list_sort(list(x)) as xs, count(*) as n from t group by rep)"
    ).fetchall()
    covered = sum(low <= true_p95 <= high for low, high in rows) / reps
    assert 0.92 <= covered <= 0.985, covered
    widths = [high - low for low, high in rows]
    ranges = values.max(axis=1) - values.min(axis=1)
    assert np.median(widths) < 0.25 * np.median(ranges)  # informative, not the whole sample range


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    wh = Warehouse(f"file://{tmp_path_factory.mktemp('charts') / 'wh'}")
    for day in (1, 2, 3):
        publish_night(wh, "org/a", day, seed=day, accuracy=0.6 if day < 3 else 0.7, n_requests=100)
    return connect(wh)


def test_trends_have_ci_bands_and_degrade_without_change_points(con: duckdb.DuckDBPyConnection) -> None:
    assert figure_data.change_points(con) == []  # no such table: nothing, and no error
    series = figure_data.trends(con, min_goodput=0.9)
    points = series["org/a"]
    stored = con.execute("select value, stderr from accuracy order by eval_date").fetchall()
    for p, (value, stderr) in zip(points, stored, strict=True):
        assert p["accuracy_ci"] == pytest.approx([value - 1.96 * stderr, value + 1.96 * stderr], rel=1e-3)
        low, high = p["ttft_p95_ci"]
        assert low <= p["ttft_p95_ms"] <= high
    fig = figures.trend("accuracy", series, figures.colours(["org/a"]))
    roles = [t.meta["role"] for t in fig.data]
    assert roles.count("band") == 1 and "change_point" not in roles
    assert fig.layout.yaxis.rangemode == "normal"
    assert figures.trend("ttft_p95_ms", series, {}).layout.yaxis.rangemode == "tozero"


def test_change_points_are_marked_when_the_table_exists(con: duckdb.DuckDBPyConnection) -> None:
    # The night of the change (not the date of the run that found it) places the marker.
    con.execute(
        "create or replace temp view change_points as select run_id, model_id, suite, scenario, "
        "'accuracy:headline' as series, date '2026-11-03' as night, eval_date, 0.6 as mean_before, "
        "0.7 as mean_after, 1 as schema_version from runs where model_id = 'org/a' "
        "qualify row_number() over (order by logical_date desc) = 1"
    )
    try:
        changes = figure_data.change_points(con)
        series = figure_data.trends(con, min_goodput=0.9)
        fig = figures.trend("accuracy", series, {}, changes)
        [marker] = [t for t in fig.data if t.meta["role"] == "change_point"]
        assert list(marker.x) == ["2026-11-03"] and list(marker.y) == [series["org/a"][-1]["accuracy"]]
        assert "mean_after: 0.7" in marker.text[0]
        assert marker.meta["status"] == "tentative" and marker.marker.symbol == "diamond-open"  # no status column
        assert not [
            t for t in figures.trend("ttft_p95_ms", series, {}, changes).data if t.meta["role"] == "change_point"
        ]
    finally:
        con.execute("drop view temp.change_points")


def test_tentative_and_confirmed_change_points_look_different() -> None:
    series = {"org/a": [{"eval_date": f"2026-11-0{d}", "accuracy": 0.6 + d / 100} for d in range(1, 6)]}
    changes = [
        {"model_id": "org/a", "series": "accuracy:headline", "night": "2026-11-02", "status": "confirmed"},
        {"model_id": "org/a", "series": "accuracy:headline", "night": "2026-11-05", "status": "tentative"},
    ]
    fig = figures.trend("accuracy", series, {}, changes)
    marks = {t.meta["status"]: t for t in fig.data if t.meta["role"] == "change_point"}
    assert marks["confirmed"].marker.symbol == "diamond" and list(marks["confirmed"].x) == ["2026-11-02"]
    assert marks["tentative"].marker.symbol == "diamond-open" and list(marks["tentative"].x) == ["2026-11-05"]
    assert marks["tentative"].name == "change point (tentative)"


def test_verdicts_figure_only_when_something_moved() -> None:
    assert figures.verdicts([{"verdict": "no_change", "delta": 0.0, "metric": "accuracy:headline"}]) is None


def test_latency_curve_draws_the_slo(tmp_path: Path) -> None:
    from factories import all_tables, run_record

    wh = Warehouse(f"file://{tmp_path / 'wh'}")
    record = run_record("org/b", day=2)
    publish_run(wh, record, all_tables(record))
    curves = figure_data.latency_curves(connect(wh))
    fig = figures.latency_vs_load(curves, {}, "concurrency")
    [slo] = [t for t in fig.data if t.meta["role"] == "slo" and t.xaxis == "x"]
    assert list(slo.y) == [500, 500]  # factories' SLO: {"ttft_p95_ms": 500}
    [line] = [t for t in fig.data if t.meta["role"] == "model" and t.xaxis == "x"]
    assert list(line.x) == [1.0, 8.0] and list(line.y) == pytest.approx([120 * 1.1, 120 * 1.8])
    assert list(fig.layout.xaxis.tickvals) == [1.0, 8.0]


def test_cdfs_compare_models_at_a_load_level_they_all_ran(tmp_path: Path) -> None:
    from factories import latency_rows, run_record, sample_rows

    wh = Warehouse(f"file://{tmp_path / 'wh'}")
    for model, loads in (("org/both", (1, 8)), ("org/heavy-only", (8,))):
        record = run_record(model, day=1)
        samples = [row for load in loads for row in sample_rows(record, n=10 + load, load=float(load))]
        publish_run(wh, record, {"latency": latency_rows(record, loads=loads), "latency_samples": samples})
    con = connect(wh)
    lines = {line["model_id"]: line for line in figure_data.cdfs(con, figure_data.latency_curves(con))}
    assert {m: (line["load"], line["n"]) for m, line in lines.items()} == {
        "org/both": (8.0, 18),
        "org/heavy-only": (8.0, 18),
    }
    # factories: every request's TTFT is 99 ms (first token at +0.1 s, sent at +0.001 s)
    assert lines["org/both"]["ttft_ms"][0] == pytest.approx(99.0) and lines["org/both"]["ttft_ms_share"][0] == 0.0


def test_trends_keep_the_last_days_when_asked(con: duckdb.DuckDBPyConnection) -> None:
    nights = [p["eval_date"] for p in figure_data.trends(con, min_goodput=0.9, days=2)["org/a"]]
    assert nights == ["2026-11-02", "2026-11-03"]  # the warehouse's last night is 2026-11-03
    assert len(figure_data.trends(con, min_goodput=0.9, with_cis=False)["org/a"]) == 3


def test_leaderboard_rows_carry_capacity_and_cost_at_the_slo(con: duckdb.DuckDBPyConnection) -> None:
    from evals.analysis.leaderboard import leaderboard as ranked

    rows = figure_data.leaderboard(con)
    boards = {(b["model_id"], b["suite"], b["scenario"]): b for b in ranked(con, min_goodput=0.9)}
    assert rows and boards
    for row in rows:
        board = boards[row["model_id"], row["suite"], row["scenario"]]
        assert row["capacity"] == board["capacity"] is not None
        assert row["usd_per_1m_at_slo"] == board["usd_per_1m_at_slo"] is not None
        assert row["slo_accuracy"] == board["slo_accuracy"] and row["accuracy_mde"] == board["accuracy_mde"]
