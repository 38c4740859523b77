"""The HTML report: parses, holds every leaderboard model, and its plot data matches the warehouse."""

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from analysis_history import publish_night

from evals.analysis.charts import pareto_frontier
from evals.analysis.night import compare_and_report
from evals.analysis.views import connect
from evals.settings import get_settings
from evals.warehouse import Warehouse

MODELS = ("org/fast", "org/accurate", "org/dominated")


class Page(HTMLParser):
    """Collects what the tests look at: tags, elements with data-* attributes, the embedded JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.points: list[dict[str, str]] = []
        self.rows: list[dict[str, str]] = []
        self.external: list[str] = []
        self._in_data = False
        self.data = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if tag == "circle" and "data-model" in a:
            self.points.append(a)
        if tag == "tr" and "data-model" in a:
            self.rows.append(a)
        for key in ("src", "href"):
            if key in a and not a[key].startswith("data:"):
                self.external.append(a[key])
        self._in_data = tag == "script" and a.get("id") == "report-data"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_data = False

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.data += data


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, Path, Page, dict[str, Any]]:
    root = tmp_path_factory.mktemp("report")
    wh = Warehouse(f"file://{root / 'wh'}", get_settings(compare_baselines=["org/accurate"]))
    for day in (1, 2, 3):
        publish_night(wh, "org/fast", day, seed=day, accuracy=0.55, ttft_scale=0.6, n_requests=200)
        publish_night(wh, "org/accurate", day, seed=10 + day, accuracy=0.80, ttft_scale=1.5, n_requests=200)
    publish_night(wh, "org/dominated", 3, seed=30, accuracy=0.50, ttft_scale=2.0, n_requests=200)
    tonight = publish_night(wh, "org/fast", 4, seed=7, accuracy=0.50, ttft_scale=0.9, n_requests=1000)
    summary = compare_and_report([tonight.run_id], warehouse=wh, report_path=root / "report.html")
    assert summary["regressions"] >= 1
    page = Page()
    html = (root / "report.html").read_text()
    page.feed(html)
    page.close()
    return wh, root / "report.html", page, json.loads(page.data)


def test_html_parses_and_is_self_contained(built: tuple[Warehouse, Path, Page, dict[str, Any]]) -> None:
    wh, path, page, _ = built
    assert page.tags[0] == "html" and page.tags.count("svg") >= 7
    assert page.external == []  # no network needed to view it
    assert wh.storage.read_bytes("_reports/report.html") == path.read_bytes()


def test_every_leaderboard_model_is_in_the_table_and_data(built: tuple[Warehouse, Path, Page, dict[str, Any]]) -> None:
    wh, _, page, _data = built
    con = connect(wh)
    board = con.execute("select model_id, accuracy, ttft_p95_ms, usd_per_1m_output_tokens from leaderboard").fetchall()
    assert {r["data-model"] for r in page.rows if "data-metric" not in r} == set(MODELS) == {b[0] for b in board}
    points = {p["data-model"]: p for p in page.points}
    for model, accuracy, ttft, cost in board:
        assert float(points[model]["data-y"]) == pytest.approx(accuracy)
        assert float(points[model]["data-x"]) == pytest.approx(ttft)
        assert float(points[model]["data-cost"]) == pytest.approx(cost)
    frontier = {p["data-model"] for p in page.points if p["data-pareto"] == "true"}
    assert frontier == {"org/fast", "org/accurate"}  # dominated is slower and less accurate than org/accurate


def test_trends_cdfs_and_regressions_match_the_warehouse(built: tuple[Warehouse, Path, Page, dict[str, Any]]) -> None:
    wh, _, page, data = built
    con = connect(wh)
    assert [p["eval_date"] for p in data["trends"]["org/fast"]] == [f"2026-11-0{d}" for d in (1, 2, 3, 4)]
    stored = dict(
        con.execute(
            "select r.model_id, l.ttft_p95_ms from latency l join runs r using (run_id) "
            "qualify row_number() over (partition by r.model_id order by r.logical_date desc) = 1"
        ).fetchall()
    )
    for model in MODELS:
        assert data["cdfs"]["p95"][model]["ttft_ms"] == pytest.approx(stored[model])
        ys = [y for _, y in data["cdfs"]["ttft_ms"][model]]
        assert ys == sorted(ys) and ys[-1] == 1.0
    assert data["night"] == "2026-11-04"
    regressed = con.execute(
        "select model_id, metric, ci_low, ci_high from comparisons where verdict = 'regression' order by all"
    ).fetchall()
    assert sorted((r["model_id"], r["metric"], r["ci_low"], r["ci_high"]) for r in data["regressions"]) == regressed
    shown = {(r["data-model"], r["data-metric"]) for r in page.rows if "data-metric" in r}
    assert shown == {(m, metric) for m, metric, *_ in regressed}
    assert ("org/fast", "accuracy:headline") in shown


def test_pareto_frontier() -> None:
    # (latency, accuracy): lower latency and higher accuracy are better.
    points = [(100.0, 0.5), (200.0, 0.7), (150.0, 0.4), (300.0, 0.7), (50.0, 0.3)]
    assert pareto_frontier(points) == [4, 0, 1]
