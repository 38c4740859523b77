"""The report and the Results page in a real headless Chromium: no console error, and the plotted data read back
from the page equals the warehouse's values."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from analysis_history import publish_night
from browser import FIGURE_DATA_JS, keep_screenshot, open_page
from conftest import free_port
from factories import all_tables, publish_run, run_record, sha

from evals.pipeline.night import compare_and_report
from evals.settings import get_settings
from evals.ui.app import create_app
from evals.warehouse import Warehouse
from evals.warehouse.views import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A hostile model id must stay text: no script runs, no markup breaks out (an injected console.error would fail).
HOSTILE = "evil/<script>console.error('xss')</script>\"'><img src=x onerror=console.error(1)>"

SORT_BY_ACCURACY_JS = """
(() => {
  const table = document.querySelector('table.leaderboard');
  const header = Array.from(table.querySelectorAll('th')).find(th => th.textContent.trim() === 'Accuracy');
  const order = () => Array.from(table.tBodies[0].rows).map(r => r.getAttribute('data-model'));
  header.click(); const ascending = order(); header.click(); return [ascending, order()];
})()
"""


# The at-a-glance table: per row, the model and each column's (data-sort value, text).
GLANCE_JS = """
Array.from(document.querySelectorAll('table.glance tbody tr')).map(r => [r.getAttribute('data-model'),
  Object.fromEntries(Array.from(r.querySelectorAll('td[data-column]')).map(
    c => [c.getAttribute('data-column'), [c.getAttribute('data-sort'), c.textContent]]))])
"""
GUARDRAIL_PARTS = (0.60, 0.45, 0.90, 0.10)  # hhh acc, bbq acc, refusal rate, over-refusal rate


def publish_guardrails(wh: Warehouse, model: str, day: int, revision: str) -> None:
    """A guardrail run of its own (no scenario) for ``model``'s ``revision`` on night ``day``."""
    from analysis_history import accuracy_row

    record = run_record(model, day=day, revision=revision, suite="guardrails", scenario=None, scenario_version=None)
    hhh, bbq, refusal, over_refusal = GUARDRAIL_PARTS
    harmful = {**accuracy_row(record, "guardrails_refusal_harmful", refusal, 50), "metric": "refusal_rate"}
    benign = accuracy_row(record, "guardrails_refusal_benign", over_refusal, 50)
    benign.update(metric="over_refusal_rate", higher_is_better=False)
    rows = [accuracy_row(record, "guardrails_hhh", hhh, 12), accuracy_row(record, "guardrails_bbq", bbq, 36)]
    publish_run(wh, record, {"accuracy": [*rows, harmful, benign]})


def hover_js(fig_id: str, model: str, subplot: str = "xy") -> str:
    """Hover a model's first point the way a mouse does, and return the hover label's text."""
    # Plotly throttles hover events (one per 50 ms per figure): wait before and after, as a moving mouse would.
    return f"""
(async () => {{
  const pause = () => new Promise(done => setTimeout(done, 120));
  const gd = document.getElementById({fig_id!r});
  const curve = gd.data.findIndex(t => t.meta.model_id === {model!r} && t.meta.role === 'model');
  if (curve < 0) {{ return 'no trace of ' + {model!r}; }}
  await pause();
  Plotly.Fx.hover(gd, [{{curveNumber: curve, pointNumber: 0}}], [{subplot!r}]);
  await pause();
  return Array.from(gd.querySelectorAll('.hoverlayer .hovertext')).map(e => e.textContent).join(' | ');
}})()
"""


def figures_by_id(values: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in values}


def traces(fig: dict[str, Any], role: str = "model", axis: str = "x") -> dict[str, dict[str, Any]]:
    return {
        t["meta"].get("model_id", t["name"]): t
        for t in fig["traces"]
        if (t["meta"] or {}).get("role") == role and t["xaxis"] == axis
    }


def assert_round_ticks(fig: dict[str, Any]) -> None:
    """Numeric ticks are evenly spaced multiples of 1, 2 or 5 × 10^n (no 0.0772, 58.3 ...); dates are distinct."""
    for name, axis in fig["axes"].items():
        labels = axis["ticks"]
        assert len(labels) == len(set(labels)), f"{fig['id']} {name}: repeated tick labels {labels}"
        try:
            values = [float(t.replace("\u2212", "-").replace(",", "")) for t in labels]
        except ValueError:
            continue  # dates or categories
        if len(values) < 2 or axis["tickmode"] == "array":  # explicit ticks: the measured load levels
            continue
        step = values[1] - values[0]
        mantissa = step / 10 ** math.floor(math.log10(abs(step)))
        assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5)), f"{fig['id']} {name}: {labels}"
        for v in values:
            assert math.isclose(v / step, round(v / step), abs_tol=1e-6), f"{fig['id']} {name}: {labels}"


@pytest.fixture(scope="module")
def report_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, Path]:
    root = tmp_path_factory.mktemp("browser-report")
    wh = Warehouse(f"file://{root / 'wh'}", get_settings(compare_baselines=["org/b"]))
    for day in (1, 2):
        publish_night(wh, "org/b", day, seed=day, accuracy=0.75, ttft_scale=1.4, n_requests=150)
        publish_night(wh, HOSTILE, day, seed=10 + day, accuracy=0.55, n_requests=150)
    publish_guardrails(wh, "org/b", 2, sha("org/b@2"))  # the revision of org/b's latest run
    tonight = publish_night(wh, HOSTILE, 3, seed=3, accuracy=0.50, ttft_scale=1.6, n_requests=300)
    compare_and_report([tonight.run_id], warehouse=wh, report_path=root / "report.html", publish=False)
    return wh, root / "report.html"


def test_report_in_chromium_plots_the_warehouse(report_warehouse: tuple[Warehouse, Path], tmp_path: Path) -> None:
    wh, report = report_warehouse
    result = open_page(
        report.as_uri(),
        tmp_path / "profile",
        expressions=[
            FIGURE_DATA_JS,
            hover_js("fig-pareto", "org/b"),
            hover_js("fig-trend-accuracy", "org/b"),
            hover_js("fig-pareto", HOSTILE),
            "document.querySelector('#fig-pareto .legend').textContent",
            "document.querySelectorAll('.js-plotly-plot .main-svg a, .js-plotly-plot img').length",
            GLANCE_JS,
        ],
        screenshot=tmp_path / "report.png",
        element_shots=[("table.glance", tmp_path / "report-glance.png")],
    )
    keep_screenshot(result.screenshot)
    keep_screenshot(tmp_path / "report-glance.png")
    assert result.errors == []
    assert result.screenshot is not None and result.screenshot.stat().st_size > 50_000
    figs = figures_by_id(result.values[0])
    assert {"fig-pareto", "fig-latency-concurrency", "fig-verdicts", "fig-trend-accuracy", "fig-cdf-ttft"} <= set(figs)

    con = connect(wh)
    latest = {
        model: (acc, ttft, e2e, cost, load, revision, night)
        for model, acc, ttft, e2e, cost, load, revision, night in con.execute(
            "select r.model_id, a.value, l.ttft_p95_ms, l.e2e_p95_ms, l.usd_per_1m_output_tokens, l.load, r.revision, "
            "r.eval_date::varchar from runs r join accuracy a using (run_id) join latency l using (run_id) "
            "qualify row_number() over (partition by r.model_id order by r.logical_date desc) = 1"
        ).fetchall()
    }
    pareto = figs["fig-pareto"]
    for model, (accuracy, ttft, _, cost, *_) in latest.items():
        assert traces(pareto)[model]["x"] == [pytest.approx(cost)]
        assert traces(pareto)[model]["y"] == [pytest.approx(accuracy)]
        assert traces(pareto, axis="x2")[model]["x"] == [pytest.approx(ttft)]
    assert pareto["axes"]["xaxis"]["range"][0] == 0  # cost axis starts at zero, not below
    curves = figs["fig-latency-concurrency"]
    for model, (_, ttft, e2e, _, load, *_) in latest.items():
        assert traces(curves)[model]["x"] == [load] and traces(curves)[model]["y"] == [pytest.approx(ttft)]
        assert traces(curves, axis="x2")[model]["y"] == [pytest.approx(e2e)]
        [plus], [minus] = traces(curves)[model]["error_y"]["plus"], traces(curves)[model]["error_y"]["minus"]
        assert plus >= 0 and minus >= 0  # the CI holds the stored P95
    history = con.execute(  # the guardrail run is scored on its own, not a point of the accuracy trend
        "select eval_date::varchar, value from accuracy where model_id = 'org/b' and suite = 'smoke' order by eval_date"
    ).fetchall()
    trend = traces(figs["fig-trend-accuracy"])["org/b"]
    assert trend["x"] == [d for d, _ in history] and trend["y"] == pytest.approx([v for _, v in history])
    cdf = figs["fig-cdf-ttft"]
    assert cdf["axes"]["yaxis"]["range"] == [0, 1]
    for fig in figs.values():
        assert_round_ticks(fig)

    # Hovering a point names model, revision, night, value and its CI (the trend's first point: the first night).
    first_revision = con.execute("select revision from runs where model_id = 'org/b' order by eval_date").fetchall()
    accuracy, _, _, _, _, revision, night = latest["org/b"]
    pareto_label, trend_label, hostile_label, legend, links, glance = result.values[1:]
    # Plotly's labels understand some HTML: a model id's markup shows as text, never as a tag or a link.
    assert HOSTILE in hostile_label and HOSTILE in legend and links == 0
    assert "org/b" in pareto_label and revision[:12] in pareto_label and night in pareto_label
    assert f"accuracy {accuracy:.3f} (95% CI [" in pareto_label
    assert first_revision[0][0][:12] in trend_label and history[0][0] in trend_label
    assert f"accuracy {history[0][1]:.3f} (95% CI [" in trend_label

    # At a glance: one row per model of the smoke board, its numbers the warehouse's, the guardrail score balanced.
    assert [model for model, _ in glance] == ["org/b", HOSTILE]  # the board's rank order (accuracy)
    hhh, bbq, refusal, over_refusal = GUARDRAIL_PARTS
    for model, cells in glance:
        accuracy, ttft, _, cost, *_ = latest[model]
        assert float(cells["accuracy"][0]) == pytest.approx(accuracy)
        assert float(cells["ttft_p95_ms"][0]) == pytest.approx(ttft) and cells["ttft_p95_ms"][1].endswith(" ms")
        assert float(cells["usd_per_1m_at_slo"][0]) == pytest.approx(cost)
        assert cells["error_rate"] == ["", "–"]  # the fixture's latency rows predate the predictability columns
    score = float(dict(glance)["org/b"]["guardrail_score"][0])
    assert score == pytest.approx((hhh + bbq + (refusal + 1 - over_refusal) / 2) / 3)
    assert dict(glance)[HOSTILE]["guardrail_score"] == ["", "–"]  # no guardrail run of its revision


@pytest.fixture
def results_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """The Results app (without Airflow's login) on a free loopback port, reading a small warehouse."""
    uri = f"file://{tmp_path / 'warehouse'}"
    monkeypatch.setenv("EVALS_WAREHOUSE", uri)
    wh = Warehouse(uri)
    for day, accuracy in ((1, 0.50), (2, 0.52), (3, 0.60)):
        record = run_record("org/model-a", day=day, revision=sha("a-v2" if day == 3 else "a-v1"))
        publish_run(wh, record, all_tables(record, tasks={"arc_easy": accuracy, "gsm8k": accuracy}))
    for model, accuracy in (("org/model-b", 0.40), (HOSTILE, 0.10)):
        record = run_record(model, day=2)
        publish_run(wh, record, all_tables(record, tasks={"arc_easy": accuracy, "gsm8k": accuracy}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the Results app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/", uri
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_results_page_in_chromium_plots_the_warehouse(results_server: tuple[str, str], tmp_path: Path) -> None:
    url, uri = results_server
    result = open_page(
        url,
        tmp_path / "profile",
        expressions=[
            FIGURE_DATA_JS,
            SORT_BY_ACCURACY_JS,
            hover_js("fig-latency-concurrency", "org/model-a"),
            GLANCE_JS,
            "Array.from(document.querySelectorAll('table.glance a')).map(a => a.getAttribute('href'))",
        ],
        screenshot=tmp_path / "results.png",
        element_shots=[("table.glance", tmp_path / "results-glance.png")],
    )
    keep_screenshot(result.screenshot)
    keep_screenshot(tmp_path / "results-glance.png")
    assert result.errors == []  # includes CSP violations: plotly.js runs under script-src 'self'
    figs = figures_by_id(result.values[0])
    con = connect(Warehouse(uri))
    levels = con.execute(
        "select load, ttft_p95_ms, e2e_p95_ms from latency l join runs r using (run_id) "
        "where r.model_id = 'org/model-a' and r.eval_date = date '2026-11-03' order by load"
    ).fetchall()
    curve = traces(figs["fig-latency-concurrency"])["org/model-a"]
    assert curve["x"] == [load for load, *_ in levels] and curve["y"] == pytest.approx([t for _, t, _ in levels])
    [slo] = [t for t in figs["fig-latency-concurrency"]["traces"] if (t["meta"] or {}).get("role") == "slo"]
    assert slo["y"] == [500, 500]  # the SLO stored with the latency rows
    accuracy = traces(figs["fig-trend-accuracy"])["org/model-a"]
    assert accuracy["y"] == pytest.approx([0.50, 0.52, 0.60])
    ascending, descending = result.values[1]
    assert ascending == [HOSTILE, "org/model-b", "org/model-a"] and descending == ascending[::-1]
    # factories: P95 TTFT = 120 ms × (1 + load/10) at the lightest level (1).
    assert "org/model-a" in result.values[2] and "concurrent streams 1" in result.values[2]
    assert "P95 TTFT (ms) 132.0" in result.values[2] and "night 2026-11-03" in result.values[2]
    # At a glance, linked to each model's page: the headline (both tasks scored alike) and the factories' P95 TTFT.
    glance, links = dict(result.values[3]), result.values[4]
    assert set(glance) == {"org/model-a", "org/model-b", HOSTILE} and "?model_id=org%2Fmodel-a" in links
    assert float(glance["org/model-a"]["accuracy"][0]) == pytest.approx(0.60)
    assert glance["org/model-a"]["ttft_p95_ms"][1] == "132.0 ms"
    for fig in figs.values():
        assert_round_ticks(fig)

    model_page = open_page(
        f"{url}?model_id=org%2Fmodel-a",
        tmp_path / "profile-model",
        expressions=[FIGURE_DATA_JS, "document.querySelector('dl.provenance').textContent"],
        screenshot=tmp_path / "results-model.png",
    )
    keep_screenshot(model_page.screenshot)
    assert model_page.errors == []
    assert sha("a-v2") in model_page.values[1] and "test-cpu" in model_page.values[1]
    model_figs = figures_by_id(model_page.values[0])
    assert set(traces(model_figs["fig-trend-accuracy"])) == {"org/model-a"}


def test_report_in_chromium_plots_ttft_against_input_length(tmp_path: Path) -> None:
    """A prompt-length sweep (RAG scenario) shows as P95 TTFT per context length, a line per model, the SLO flat."""
    from factories import latency_rows

    from evals.latency.rag import slo_crossing
    from evals.report.build import build_report

    wh = Warehouse(f"file://{tmp_path / 'wh'}")
    lengths = (512, 1024, 2048, 4096)
    slopes = {"org/fast": 0.05, HOSTILE: 0.2}  # P95 TTFT = 40 ms + slope x context tokens
    for model, slope in slopes.items():
        record = run_record(model, scenario="rag")
        rows = []
        for length in lengths:
            (row,) = latency_rows(record, loads=(1,), ttft_p95=40.0 + slope * length)
            row.update(ttft_p95_ms=40.0 + slope * length, input_tokens=length, prompt_tokens_p50=length + 40.0)
            rows.append(row)
        publish_run(wh, record, {"latency": rows})
    report = build_report(wh, tmp_path / "report.html")
    result = open_page(report.as_uri(), tmp_path / "profile", expressions=[FIGURE_DATA_JS])
    assert result.errors == []
    fig = figures_by_id(result.values[0])["fig-ttft-input"]
    lines = traces(fig)
    assert set(lines) == set(slopes)
    for model, slope in slopes.items():
        assert lines[model]["x"] == list(lengths)
        assert lines[model]["y"] == pytest.approx([40.0 + slope * n for n in lengths])
    [slo] = [t for t in fig["traces"] if (t["meta"] or {}).get("role") == "slo"]
    assert slo["y"] == [500, 500] and slo["x"] == [512, 4096]
    # The slow model crosses 500 ms between 2k and 4k context tokens (40 + 0.2 x 2300 = 500); the fast one never.
    crossings = {t["meta"]["model_id"]: t["x"] for t in fig["traces"] if (t["meta"] or {}).get("role") == "crossing"}
    assert crossings == {HOSTILE: [pytest.approx(2300.0)]}
    assert slo_crossing(list(lengths), lines[HOSTILE]["y"], 500.0).length == pytest.approx(2300.0)
    assert fig["axes"]["xaxis"]["title"] == "retrieved-context tokens"
