"""The night's compare-and-report step against file:// and a real SeaweedFS bucket."""

from pathlib import Path

import pytest
from analysis_history import publish_night
from factories import sha

from evals.pipeline.night import compare_and_report
from evals.report.notify import RegressionDetected
from evals.settings import get_settings
from evals.warehouse import Warehouse
from evals.warehouse.views import connect

pytestmark = pytest.mark.integration


def test_compare_and_report_writes_comparisons_and_report(warehouse_uri: str, tmp_path: Path) -> None:
    wh = Warehouse(warehouse_uri, get_settings(compare_baselines=["org/prod"], fail_on_regression=True))
    publish_night(wh, "org/prod", 1, seed=1, n_requests=200)
    # Six re-measured nights of org/a's last revision: the series' night-to-night noise is measured, so tonight's
    # latency can be judged against it (with fewer, a latency row has no verdict).
    for day in range(1, 7):
        publish_night(wh, "org/a", day, seed=10 + day, n_requests=200, revision=sha("org/a@v1"))
    tonight = publish_night(wh, "org/a", 7, seed=3, ttft_scale=1.6, n_requests=300)
    with pytest.raises(RegressionDetected) as raised:
        compare_and_report([tonight.run_id], warehouse=wh, report_path=tmp_path / "report.html")
    assert any(r["metric"].startswith("latency:ttft_p95_ms") for r in raised.value.regressions)
    # Raised only after everything was stored: comparisons visible through the views, report published.
    con = connect(wh)
    kinds = con.execute("select distinct kind from comparisons where run_id = ?", [tonight.run_id]).fetchall()
    assert sorted(k for (k,) in kinds) == ["baseline_model", "previous_revision"]
    assert wh.storage.read_bytes("_reports/report.html") == (tmp_path / "report.html").read_bytes()

    # A rerun overwrites the same key: no doubled rows.
    before = con.execute("select count(*) from comparisons").fetchall()[0][0]
    relaxed = Warehouse(warehouse_uri, get_settings(compare_baselines=["org/prod"]))
    summary = compare_and_report([tonight.run_id], warehouse=relaxed, publish=False)
    assert summary["comparisons"] == before and summary["regressions"] >= 1
    assert connect(wh).execute("select count(*) from comparisons").fetchall()[0][0] == before
