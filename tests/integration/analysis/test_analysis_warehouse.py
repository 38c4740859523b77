"""The night's compare-and-report step against file:// and a real SeaweedFS bucket; the report in Chromium."""

import shutil
import subprocess
from pathlib import Path

import pytest
from analysis_history import publish_night

from evals.analysis.night import compare_and_report
from evals.analysis.notify import RegressionDetected
from evals.analysis.views import connect
from evals.settings import get_settings
from evals.warehouse import Warehouse

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_compare_and_report_writes_comparisons_and_report(warehouse_uri: str, tmp_path: Path) -> None:
    wh = Warehouse(warehouse_uri, get_settings(compare_baselines=["org/prod"], fail_on_regression=True))
    publish_night(wh, "org/prod", 1, seed=1, n_requests=200)
    publish_night(wh, "org/a", 1, seed=2, n_requests=200)
    tonight = publish_night(wh, "org/a", 2, seed=3, ttft_scale=1.6, n_requests=300)
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
    summary = compare_and_report([tonight.run_id], warehouse=relaxed, publish_report=False)
    assert summary["comparisons"] == before and summary["regressions"] >= 1
    assert connect(wh).execute("select count(*) from comparisons").fetchall()[0][0] == before


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (optional: apt-get install chromium)")
def test_report_renders_in_headless_chromium_without_console_errors(tmp_path: Path) -> None:
    wh = Warehouse(f"file://{tmp_path / 'wh'}", get_settings(compare_baselines=["org/b"]))
    # A hostile model id must stay text: no script runs, no markup breaks out.
    hostile = "evil/<script>console.error('xss')</script>\"'><img src=x onerror=console.error(1)>"
    publish_night(wh, "org/b", 1, seed=1, n_requests=100)
    publish_night(wh, hostile, 1, seed=2, n_requests=100)
    tonight = publish_night(wh, hostile, 2, seed=3, ttft_scale=1.5, n_requests=200)
    out = tmp_path / "report.html"
    compare_and_report([tonight.run_id], warehouse=wh, report_path=out, publish_report=False)
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [CHROMIUM, *flags, "--window-size=1300,2400", f"--screenshot={shot}", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or ":INFO:CONSOLE" in line]
    assert console == [], console
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=60)
    assert "<img src" not in dom.stdout and dom.stdout.count("<svg") >= 7
