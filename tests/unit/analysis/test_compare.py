"""compare_run / compare_night on synthetic histories in a file:// warehouse: verdicts, kinds, writes, policy."""

from pathlib import Path

import pytest
from analysis_history import publish_night, true_ttft_p95
from factories import all_tables, publish_run, run_record, sha

from evals.analysis.compare import compare_models, compare_night, compare_run
from evals.analysis.verdicts import adjust, summarize
from evals.errors import RunNotFound, SchemaViolation
from evals.report.notify import RegressionDetected, apply_policy
from evals.settings import get_settings
from evals.warehouse import Warehouse
from evals.warehouse.views import connect

LEVEL = "@concurrency=4"


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(f"file://{tmp_path / 'wh'}")


def by_metric(rows: list[dict], kind: str | None = None) -> dict[str, dict]:
    return {r["metric"]: r for r in rows if kind is None or r["kind"] == kind}


def _history(wh: Warehouse, model: str, nights: int, revision: str) -> None:
    """``nights`` re-measurements of one unchanged revision (days 1..nights): the series' night-to-night noise."""
    for n in range(1, nights + 1):
        publish_night(wh, model, n, seed=100 + n, revision=revision)


def test_injected_regression_is_flagged_with_cis_containing_the_truth(wh: Warehouse) -> None:
    _history(wh, "org/a", 6, "b" * 40)  # 5 re-measurements: the noise is estimated, not the default
    tonight = publish_night(wh, "org/a", 7, seed=7, accuracy=0.60, ttft_scale=1.3, n_requests=1000)
    rows = by_metric(compare_run(tonight.run_id, warehouse=wh, baselines=[]), "previous_revision")

    acc = rows["accuracy:arc_easy/acc"]
    assert acc["verdict"] == "regression"
    assert acc["ci_low"] <= -0.10 <= acc["ci_high"] < 0
    assert acc["p_adjusted"] >= acc["p_value"]
    assert rows["accuracy:headline"]["verdict"] == "regression"

    ttft = rows[f"latency:ttft_p95_ms{LEVEL}"]
    assert ttft["verdict"] == "regression"
    truth = true_ttft_p95(1.3) - true_ttft_p95(1.0)
    assert 0 < ttft["ci_low"] <= truth <= ttft["ci_high"]
    assert ttft["alpha"] == 0.05 and ttft["n_history"] == 6 and 0 < ttft["night_cv"] < 0.1
    assert "re-measurements" in ttft["notes"]
    # The value is the P95 the latency table stores.
    con = connect(wh)
    stored = con.execute("select ttft_p95_ms from latency where run_id = ?", [tonight.run_id]).fetchall()[0][0]
    assert ttft["value"] == pytest.approx(stored)
    cost = rows[f"cost:usd_per_1m_output_tokens{LEVEL}"]
    assert cost["ci_low"] is not None and cost["tested_with"] == f"latency:output_tokens_per_s{LEVEL}"


def test_identical_distributions_give_no_false_change(wh: Warehouse) -> None:
    publish_night(wh, "org/a", 1, seed=1)
    tonight = publish_night(wh, "org/a", 2, seed=2)
    rows = compare_run(tonight.run_id, warehouse=wh, baselines=[])
    assert {r["verdict"] for r in rows} <= {"equivalent", "no_change", "noisy", "insufficient_data"}
    assert len(rows) == 6  # headline, one task, P95 TTFT, P95 E2E, throughput, cost
    # Two nights and no re-measurements: the default night CV (10 %) is in every latency CI, and said so; with the
    # series' noise not yet measured, no latency or cost row is tested (a machine's nights may differ far more).
    latency = [r for r in rows if r["metric"].startswith(("latency:", "cost:"))]
    assert all(r["night_cv"] == pytest.approx(0.10) and "default" in r["notes"] for r in latency)
    assert all(r["verdict"] == "insufficient_data" and "no verdict until" in r["notes"] for r in latency)


def test_missing_baselines_give_one_no_baseline_row_each(wh: Warehouse) -> None:
    first = publish_night(wh, "org/a", 1, seed=1)
    rows = compare_run(first.run_id, warehouse=wh, baselines=["org/prod"])
    assert [(r["kind"], r["metric"], r["verdict"], r["baseline_model_id"]) for r in rows] == [
        ("previous_revision", "*", "no_baseline", None),
        ("baseline_model", "*", "no_baseline", "org/prod"),
    ]
    assert all(r["baseline_run_id"] is None and r["delta"] is None for r in rows)


def test_kinds_and_baselines_use_the_right_runs(wh: Warehouse) -> None:
    prod = publish_night(wh, "org/prod", 1, seed=1)
    publish_night(wh, "org/prod", 3, seed=2)  # after tonight: a rerun of night 2 must not see it
    old = publish_night(wh, "org/a", 1, seed=3, revision="a" * 40)
    tonight = publish_night(wh, "org/a", 2, seed=4, revision="a" * 40)
    rows = compare_run(tonight.run_id, warehouse=wh, baselines=["org/prod", "org/a"])
    kinds = {(r["kind"], r["baseline_run_id"]) for r in rows}
    assert kinds == {("previous_run", old.run_id), ("baseline_model", prod.run_id)}  # itself is no baseline


def test_rows_are_written_and_a_rerun_overwrites(wh: Warehouse) -> None:
    publish_night(wh, "org/a", 1, seed=1)
    tonight = publish_night(wh, "org/a", 2, seed=2)
    compare_night([tonight.run_id], warehouse=wh, baselines=[])
    compare_night([tonight.run_id], warehouse=wh, baselines=["org/missing"])
    con = connect(wh)
    stored = con.execute("select kind, verdict from comparisons where run_id = ?", [tonight.run_id]).fetchall()
    assert len(stored) == 7 and ("baseline_model", "no_baseline") in stored
    # The run's other tables are untouched, and the report's reads still work.
    assert (
        con.execute("select count(*) from latency_samples where run_id = ?", [tonight.run_id]).fetchall()[0][0] == 400
    )


def test_write_table_refuses_unpublished_runs_and_primary_tables(wh: Warehouse) -> None:
    record = run_record("org/q")
    wh.write_run(record, all_tables(record), status="quarantined")
    with pytest.raises(RunNotFound):
        wh.write_table(record, "comparisons", [])
    with pytest.raises(SchemaViolation):
        wh.write_table(record, "accuracy", [])
    with pytest.raises(RunNotFound):
        compare_run(record.run_id, warehouse=wh)


def test_separate_accuracy_and_latency_runs_are_matched_by_suite_and_scenario(wh: Warehouse) -> None:
    for day in (1, 2):
        acc = run_record("org/a", day, scenario=None, scenario_version=None, revision=f"{day}" * 40)
        publish_run(wh, acc, {"accuracy": all_tables(acc, tasks={"arc_easy": 0.6 + day / 10})["accuracy"]})
        lat = run_record("org/a", day, suite=None, suite_version=None, revision=f"{day}" * 40)
        tables = all_tables(lat)
        publish_run(wh, lat, {"latency": tables["latency"], "latency_samples": tables["latency_samples"]})
    rows = compare_night([acc.run_id, lat.run_id], warehouse=wh, baselines=[])
    metrics = {run: {r["metric"].split(":")[0] for r in rows if r["run_id"] == run} for run in (acc.run_id, lat.run_id)}
    assert metrics == {acc.run_id: {"accuracy"}, lat.run_id: {"latency", "cost"}}
    improved = by_metric([r for r in rows if r["run_id"] == acc.run_id])["accuracy:arc_easy/acc"]
    assert improved["verdict"] == "improvement"  # +10 points, stderr 0.01


def test_policy_logs_notifies_and_fails_when_configured(wh: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    _history(wh, "org/a", 6, "b" * 40)
    tonight = publish_night(wh, "org/a", 7, seed=7, accuracy=0.60, ttft_scale=1.3, n_requests=1000)
    rows = compare_run(tonight.run_id, warehouse=wh, baselines=[], write=False)
    sent: list = []

    class Recorder:
        def send(self, notice: object) -> None:
            sent.append(notice)

    found = apply_policy(rows, settings=get_settings(fail_on_regression=False), notifier=Recorder())
    assert len(found) >= 3 and len(sent) == 1
    assert "tests (weighted Benjamini-Hochberg at 0.05)" in sent[0].title and "expected false findings" in sent[0].title
    assert "CI [" in caplog.text and "latency:ttft_p95_ms@concurrency=4" in caplog.text
    with pytest.raises(RegressionDetected) as raised:
        apply_policy(rows, settings=get_settings(fail_on_regression=True), notifier=Recorder())
    assert raised.value.retryable is False and "accuracy:arc_easy/acc" in str(raised.value)


def test_compare_models_latest_runs(wh: Warehouse) -> None:
    _history(wh, "org/b", 6, revision=sha("org/b@v1"))  # the series' night-to-night noise is measured
    publish_night(wh, "org/a", 1, seed=1)
    publish_night(wh, "org/a", 7, seed=2, ttft_scale=1.5)
    rows = by_metric(compare_models("org/a", "org/b", warehouse=wh))
    assert rows[f"latency:ttft_p95_ms{LEVEL}"]["verdict"] == "regression"
    assert {r["kind"] for r in rows.values()} == {"baseline_model"}
    with pytest.raises(RunNotFound):
        compare_models("org/none", "org/b", warehouse=wh)


def test_too_few_requests_cannot_claim_a_latency_change(wh: Warehouse) -> None:
    # 6 requests per level (the smoke scenario's size): even a 2x slower TTFT is not called a regression,
    # because no test can be made from so few requests. The stored numbers are still reported.
    publish_night(wh, "org/a", 1, seed=1, n_requests=6)
    tonight = publish_night(wh, "org/a", 2, seed=2, n_requests=6, ttft_scale=2.0)
    rows = by_metric(compare_run(tonight.run_id, warehouse=wh, baselines=[]))
    for metric in ("ttft_p95_ms", "e2e_p95_ms", "output_tokens_per_s"):
        row = rows[f"latency:{metric}{LEVEL}"]
        assert row["ci_low"] is None and row["delta"] is not None and row["p_value"] is None
        assert row["verdict"] == "insufficient_data" and "fewer than" in row["notes"]
    assert rows[f"cost:usd_per_1m_output_tokens{LEVEL}"]["verdict"] == "insufficient_data"


def test_cost_has_throughputs_ci_and_shares_its_test(wh: Warehouse) -> None:
    _history(wh, "org/a", 6, revision=sha("org/a@v1"))
    tonight = publish_night(wh, "org/a", 7, seed=12, ttft_scale=3.0)
    rows = compare_run(tonight.run_id, warehouse=wh, baselines=[])
    by = by_metric(rows)
    throughput = by[f"latency:output_tokens_per_s{LEVEL}"]
    cost = by[f"cost:usd_per_1m_output_tokens{LEVEL}"]
    assert cost["tested_with"] == throughput["metric"] and cost["p_adjusted"] == throughput["p_adjusted"]
    # cost = price / throughput at an unchanged price: its relative CI is the reciprocal of throughput's.
    ratio = [1 + throughput[k] / throughput["baseline_value"] for k in ("ci_high", "ci_low")]
    assert [1 + cost[k] / cost["baseline_value"] for k in ("ci_low", "ci_high")] == pytest.approx(
        [1 / r for r in ratio]
    )
    assert summarize(rows).tested == len(rows) - 1  # the pair is counted once


def test_the_headline_and_the_reference_ttft_get_the_primary_share_of_alpha(wh: Warehouse) -> None:
    # Two models of one night (their latency rows are tested at once). The headline and P95 TTFT at the reference
    # level (the only level here) are the primary rows: weighted BH with the default share 0.5 of alpha.
    publish_night(wh, "org/a", 1, seed=1)
    publish_night(wh, "org/b", 1, seed=2, ttft_scale=1.2)
    rows = compare_models("org/b", "org/a", warehouse=wh)
    assert get_settings().compare_primary_alpha_share == 0.5
    primary = {"accuracy:headline", f"latency:ttft_p95_ms{LEVEL}"}
    families = [r["tested_with"] or r["metric"] for r in rows]
    expected = adjust([r["p_value"] for r in rows], families, [r["metric"] in primary for r in rows], 0.5)
    assert [r["p_adjusted"] for r in rows] == pytest.approx(expected)
    assert expected != pytest.approx(adjust([r["p_value"] for r in rows], families))  # the weights made a difference


def test_a_level_run_as_trials_takes_its_ci_from_the_spread_between_its_trials(wh: Warehouse) -> None:
    # Each of 5 trials moved as a whole (log-SD 0.15): a bootstrap over the requests cannot see it, the trials can.
    # The reference is computed here from the stored samples: per-trial P95 TTFT (numpy), their log variance / K,
    # the default night noise (one night of history), Welch-Satterthwaite df, scipy's t quantile.
    import math

    import numpy as np
    from scipy import stats as scipy_stats

    runs = {
        model: publish_night(wh, model, 1, seed=seed, trials=5, trial_sd=0.15, n_requests=500, ttft_scale=scale)
        for model, seed, scale in (("org/a", 1, 1.0), ("org/b", 2, 1.2))
    }
    row = by_metric(compare_models("org/b", "org/a", warehouse=wh))[f"latency:ttft_p95_ms{LEVEL}"]
    assert row["method"] == "trials"

    con = connect(wh)
    own = {}
    for model, record in runs.items():
        trial, ttft = np.array(
            con.execute(
                "select trial, (first_token_s - sent_s) * 1000 from latency_samples where run_id = $run order by 1",
                {"run": record.run_id},
            ).fetchall()
        ).T
        logs = [math.log(np.percentile(ttft[trial == k], 95)) for k in range(5)]
        own[model] = np.var(logs, ddof=1) / 5
    night = math.log1p(get_settings().compare_night_cv) ** 2  # the default: no re-measured nights yet
    se = math.sqrt(2 * night + own["org/a"] + own["org/b"])
    df = se**4 / ((own["org/a"] ** 2 + own["org/b"] ** 2) / 4)
    half_width = (
        math.log1p(row["ci_high"] / row["baseline_value"]) - math.log1p(row["ci_low"] / row["baseline_value"])
    ) / 2
    assert half_width == pytest.approx(scipy_stats.t.ppf(0.975, df) * se, rel=1e-6)
