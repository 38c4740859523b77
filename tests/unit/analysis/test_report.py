"""The HTML report: self-contained, every leaderboard model in it, and its figures' data equal to the warehouse's."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from analysis_history import publish_night

from evals.pipeline.night import compare_and_report
from evals.settings import get_settings
from evals.warehouse import Warehouse
from evals.warehouse.views import connect

MODELS = ("org/fast", "org/accurate", "org/dominated")


class Page(HTMLParser):
    """Collects what the tests look at: tags, leaderboard rows, external references, JSON data blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[dict[str, str]] = []
        self.external: list[str] = []
        self.blocks: dict[str, str] = {}
        self._block: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if tag == "tr" and "data-model" in a:
            self.rows.append(a)
        for key in ("src", "href"):
            if key in a and not a[key].startswith("data:"):
                self.external.append(a[key])
        if tag == "script" and a.get("type") == "application/json":
            self._block = a.get("data-figure") or a.get("id") or ""
            self.blocks[self._block] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._block = None

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self.blocks[self._block] += data


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, Path, Page, str]:
    root = tmp_path_factory.mktemp("report")
    wh = Warehouse(f"file://{root / 'wh'}", get_settings(compare_baselines=["org/accurate"]))
    for day in (1, 2, 3):
        publish_night(wh, "org/fast", day, seed=day, accuracy=0.55, ttft_scale=0.6, n_requests=200)
        publish_night(wh, "org/accurate", day, seed=10 + day, accuracy=0.80, ttft_scale=1.5, n_requests=200)
    publish_night(wh, "org/dominated", 3, seed=30, accuracy=0.50, ttft_scale=2.0, n_requests=200)
    tonight = publish_night(wh, "org/fast", 4, seed=7, accuracy=0.50, ttft_scale=0.9, n_requests=1000)
    summary = compare_and_report([tonight.run_id], warehouse=wh, report_path=root / "report.html")
    assert summary["regressions"] >= 1
    html = (root / "report.html").read_text()
    page = Page()
    page.feed(html)
    page.close()
    return wh, root / "report.html", page, html


def figure(page: Page, fig_id: str) -> dict[str, Any]:
    return json.loads(page.blocks[fig_id])


def model_traces(fig: dict[str, Any], axis: str = "x") -> dict[str, dict[str, Any]]:
    return {
        t["meta"]["model_id"]: t for t in fig["data"] if t["meta"]["role"] == "model" and t.get("xaxis", "x") == axis
    }


def test_html_is_self_contained_with_plotly_inline(built: tuple[Warehouse, Path, Page, str]) -> None:
    wh, path, page, html = built
    assert page.tags[0] == "html" and "svg" not in page.tags  # no hand-drawn charts left
    assert page.external == []  # no network needed to view it: plotly.js is inline
    assert re.search(r"plotly\.js v\d", html) and "cdn" not in " ".join(page.external)
    assert wh.storage.read_bytes("_reports/report.html") == path.read_bytes()
    expected = {"fig-pareto", "fig-latency-concurrency", "fig-verdicts", "fig-cdf-ttft", "fig-cdf-e2e"}
    expected |= {f"fig-trend-{m}" for m in ("accuracy", "ttft_p95_ms", "e2e_p95_ms", "usd_per_1m_at_slo")}
    assert expected <= set(page.blocks)


def test_leaderboard_and_pareto_match_the_warehouse(built: tuple[Warehouse, Path, Page, str]) -> None:
    wh, _, page, _ = built
    con = connect(wh)
    # The truth, from the raw tables: each model's latest run's accuracy (one task) and its one latency level.
    truth = {
        model: (acc, ttft, cost)
        for model, acc, ttft, cost in con.execute(
            "select r.model_id, a.value, l.ttft_p95_ms, l.usd_per_1m_output_tokens from runs r "
            "join accuracy a using (run_id) join latency l using (run_id) "
            "qualify row_number() over (partition by r.model_id order by r.logical_date desc) = 1"
        ).fetchall()
    }
    assert {r["data-model"] for r in page.rows} == set(MODELS) == set(truth)
    fig = figure(page, "fig-pareto")
    cost_panel, ttft_panel = model_traces(fig, "x"), model_traces(fig, "x2")
    for model, (accuracy, ttft, cost) in truth.items():
        assert cost_panel[model]["x"] == [pytest.approx(cost)] and cost_panel[model]["y"] == [pytest.approx(accuracy)]
        assert ttft_panel[model]["x"] == [pytest.approx(ttft)] and ttft_panel[model]["y"] == [pytest.approx(accuracy)]
    # org/dominated is slower and less accurate than org/accurate: the frontier is the other two.
    [frontier] = [t for t in fig["data"] if t["meta"]["role"] == "frontier" and t.get("xaxis") == "x2"]
    expected = sorted((truth[m][1], truth[m][0]) for m in ("org/fast", "org/accurate"))
    plotted = sorted(zip(frontier["x"], frontier["y"], strict=True))
    assert [v for p in plotted for v in p] == pytest.approx([v for p in expected for v in p])
    # Axes that cannot go negative start at zero.
    assert fig["layout"]["xaxis"]["rangemode"] == "tozero" and fig["layout"]["xaxis2"]["rangemode"] == "tozero"


def test_trends_cdfs_and_verdicts_match_the_warehouse(built: tuple[Warehouse, Path, Page, str]) -> None:
    wh, _, page, _ = built
    con = connect(wh)
    accuracy = model_traces(figure(page, "fig-trend-accuracy"))["org/fast"]
    stored = con.execute(
        "select eval_date::varchar, value from accuracy where model_id = 'org/fast' order by eval_date"
    ).fetchall()
    assert accuracy["x"] == [d for d, _ in stored] and accuracy["y"] == pytest.approx([v for _, v in stored])
    bands = [t for t in figure(page, "fig-trend-accuracy")["data"] if t["meta"]["role"] == "band"]
    assert {t["meta"]["model_id"] for t in bands} == {"org/fast", "org/accurate"}  # two nights or more: a band
    alone = model_traces(figure(page, "fig-trend-accuracy"))["org/dominated"]  # one night: an error bar
    assert alone["error_y"]["array"][0] > 0 and alone["error_y"]["arrayminus"][0] > 0

    samples = con.execute(
        "select r.model_id, (s.first_token_s - s.sent_s) * 1000 from latency_samples s join runs r using (run_id) "
        "where s.ok qualify dense_rank() over (partition by r.model_id order by r.logical_date desc) = 1"
    ).fetchall()
    cdf = model_traces(figure(page, "fig-cdf-ttft"))
    for model in MODELS:
        values = sorted(v for m, v in samples if m == model)
        trace = cdf[model]
        assert trace["x"][0] == pytest.approx(values[0]) and trace["x"][-1] == pytest.approx(values[-1])
        assert trace["y"] == sorted(trace["y"]) and trace["y"][-1] == 1.0 and trace["y"][0] == 0.0
    assert figure(page, "fig-cdf-ttft")["layout"]["yaxis"]["range"] == [0, 1]

    regressed = con.execute(
        "select model_id, metric, delta from comparisons where verdict = 'regression' and metric like 'accuracy%'"
    ).fetchall()
    verdicts = figure(page, "fig-verdicts")
    [points] = [t for t in verdicts["data"] if t["name"] == "regression" and t.get("xaxis", "x") == "x"]
    plotted = dict(zip(points["y"], points["x"], strict=True))
    for model, metric, delta in regressed:
        assert plotted[next(label for label in plotted if f"{model} · {metric} " in label)] == pytest.approx(
            delta * 100
        )


def test_embedded_data_is_strict_json(built: tuple[Warehouse, Path, Page, str]) -> None:
    _, _, page, _ = built
    data = json.loads(page.blocks["report-data"], parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert data["night"] == "2026-11-04" and set(data["models"]) == set(MODELS)


def test_leaderboard_shows_the_columns_the_view_has() -> None:
    """Columns another issue adds to the view (capacity and cost at SLO, detectable effect) show without a change."""
    from evals.report.sections import leaderboard_tables

    row = {"model_id": "org/a", "revision": "r" * 40, "suite": "s", "scenario": "c", "accuracy": 0.5,
           "capacity": 16.0, "usd_per_1m_at_slo": 0.25, "new_metric": 3.0}  # fmt: skip
    html = leaderboard_tables([row, {**row, "model_id": "org/b", "suite": "t", "capacity": None}])
    assert html.count("<table") == 2 and "Suite s · scenario c" in html and "Suite t · scenario c" in html
    assert ">Capacity at SLO<" in html and ">16<" in html and ">$0.25<" in html and ">new metric<" in html
    assert 'data-sort="16.0"' in html and 'data-sort=""' in html  # missing values sort last, not as zero
    assert ">P95 TTFT ms<" not in html  # a column the view does not have is left out


def test_the_latest_nights_discovery_problems_are_shown() -> None:
    """A night that found nothing new says whether it could look: failed watch-list entries and checkpoints no
    longer retried are listed, escaped; a clean night is one quiet line."""
    from evals.report.sections import discovery_section

    night = {
        "logical_date": "2026-11-20",
        "new": 1,
        "already_evaluated": 4,
        "errors": [{"entry": "sources[1] (hf org <acme>)", "message": "Hub unreachable after 5 attempts"}],
        "exhausted": [{"ref": "hf:org/m@" + "a" * 40, "failures": 3, "last_error": "CUDA OOM"}],
    }
    html = discovery_section(night)
    assert "Discovery of the latest night (2026-11-20)" in html and 'class="notice error"' in html
    assert "1 new checkpoint(s) planned, 4 already evaluated, 1 watch-list entry not looked at" in html
    assert "sources[1] (hf org &lt;acme&gt;)" in html and "<acme>" not in html
    assert "Hub unreachable after 5 attempts" in html and "CUDA OOM" in html and ">3<" in html
    quiet = discovery_section({**night, "errors": [], "exhausted": []})
    assert 'class="meta"' in quiet and "<table" not in quiet and "0 watch-list entries not looked at" in quiet


def test_the_report_shows_the_recorded_discovery(built: tuple[Warehouse, Path, Page, str], tmp_path: Path) -> None:
    import datetime as dt

    from evals.checkpoints.discover import DiscoveryResult
    from evals.checkpoints.watchlist import EntryError
    from evals.report.build import build_report

    wh, _, _, html = built
    assert "Discovery of the latest night" not in html  # no nightly discovery recorded: no section
    found = DiscoveryResult(errors=[EntryError("sources[0]", "HTTP 503 from the Hub")], already_evaluated=2)
    wh.record_discovery(dt.date(2026, 11, 4), found.night_summary())
    again = build_report(wh, tmp_path / "report.html").read_text()
    assert "Discovery of the latest night (2026-11-04)" in again and "HTTP 503 from the Hub" in again
