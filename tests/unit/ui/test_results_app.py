import json
import re
from html import escape
from pathlib import Path

import pytest
from conftest import free_port
from factories import publish_run, sha
from fastapi.testclient import TestClient

from evals.ui.app import create_app


def leaderboard_rows(html: str) -> list[str]:
    table = re.search(r'<table class="leaderboard sortable">.*?</table>', html, re.S)
    assert table, "no leaderboard table"
    return re.findall(r"<tr data-model=.*?</tr>", table.group(0), re.S)


def figure_blocks(html: str) -> dict[str, dict]:
    blocks = re.findall(r'<script type="application/json" data-figure="([^"]+)">(.*?)</script>', html, re.S)
    return {fig_id: json.loads(text) for fig_id, text in blocks}


def _cost_at_slo(uri: str, model_id: str, *, load: float) -> float:
    """USD per 1M output tokens at ``load`` counting only requests within the fixture's SLO (TTFT <= 500 ms), read
    from the stored request samples and the level's duration and price: the reference for the page's number."""
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    (served, duration, price, gpus) = (
        connect(Warehouse(uri))
        .execute(
            """select sum(s.output_tokens) filter (where s.ok and (s.first_token_s - s.sent_s) * 1000 <= 500),
                  any_value(l.duration_s), any_value(l.gpu_hour_usd), any_value(l.gpu_count)
           from latency_samples s join latency l using (run_id, load_type, load) join runs r using (run_id)
           where r.model_id = $model and s.load = $load
             and r.logical_date = (select max(logical_date) from runs where model_id = $model)""",
            {"model": model_id, "load": load},
        )
        .fetchone()
    )
    return float(price) * gpus / (served / duration * 3600) * 1e6


def test_page_shows_the_leaderboard_and_figures(client: TestClient, results_warehouse: str) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    rows = leaderboard_rows(html)
    assert len(rows) == 3
    # Ordered by accuracy, best first; model-a shows its latest night and revision.
    assert ">org/model-a</a>" in rows[0] and sha("a-v2")[:12] in rows[0] and "2026-11-03" in rows[0]
    assert ">0.600<" in rows[0]
    assert ">org/model-b</a>" in rows[1]
    # P95 TTFT at the reference level (concurrency 1: 120 * 1.1); capacity 8 (goodput 95 %) and its cost at the SLO.
    cost = _cost_at_slo(results_warehouse, "org/model-a", load=8.0)
    assert ">132.0<" in rows[0] and "concurrency=1<" in rows[0] and ">8<" in rows[0] and ">95%<" in rows[0]
    assert f">${cost:,.2f}<" in rows[0]
    figures = figure_blocks(html)
    assert {"fig-pareto", "fig-latency-concurrency", "fig-trend-accuracy", "fig-cdf-ttft"} <= set(figures)
    accuracy = {t["name"]: t for t in figures["fig-trend-accuracy"]["data"] if t["meta"]["role"] == "model"}
    assert accuracy["org/model-a"]["x"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert accuracy["org/model-a"]["y"] == pytest.approx([0.50, 0.52, 0.60])
    assert results_warehouse in html


def test_page_loads_scripts_only_from_itself(client: TestClient, results_warehouse: str) -> None:
    response = client.get("/")
    html = response.text
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert sources == ["static/plotly.min.js", "static/figures.js"]
    # Every other script element is a JSON data block: nothing inline runs, so the CSP needs no exception.
    assert all('type="application/json"' in tag for tag in re.findall(r"<script(?! src)[^>]*>", html))
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing may be fetched from elsewhere"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp and "unsafe-eval" not in csp
    plotly_js = client.get("/static/plotly.min.js")
    assert plotly_js.status_code == 200 and "plotly.js v" in plotly_js.text[:200]
    assert plotly_js.headers["content-type"].startswith("text/javascript")
    assert "Plotly.newPlot" in client.get("/static/figures.js").text
    assert client.get("/static/../app.py").status_code == 404 and client.get("/static/x.js").status_code == 404


def test_malicious_model_id_is_escaped(client: TestClient, results_warehouse: str, malicious_model_id: str) -> None:
    evil = malicious_model_id
    html = client.get("/").text
    assert evil not in html
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert escape(evil) in html  # the leaderboard cell
    # The link to its page carries it percent-encoded, inside a quoted attribute.
    assert 'href="?model_id=evil%2F%3Cscript%3E' in html
    # Reflected from the query string, it is escaped too.
    html = client.get("/", params={"model_id": evil}).text
    assert evil not in html and "<script>alert(1)" not in html
    assert f"Results of {escape(evil)}" in html


def test_model_page_shows_its_history_provenance_and_only_its_figures(
    client: TestClient, results_warehouse: str
) -> None:
    html = client.get("/", params={"model_id": "org/model-a"}).text
    assert len(leaderboard_rows(html)) == 3  # the leaderboard stays whole
    history = re.search(r'<table id="history".*?</table>', html, re.S)
    assert history and history.group(0).count("<tr>") == 1 + 3  # header + three nights
    assert sha("a-v2") in html and "test-cpu" in html and "lm_eval: 0.4.13" in html  # provenance
    accuracy = figure_blocks(html)["fig-trend-accuracy"]
    assert {t["name"] for t in accuracy["data"] if t["meta"]["role"] == "model"} == {"org/model-a"}
    html = client.get("/", params={"model_id": "org/unknown"}).text
    assert "No runs of model" in html


def test_filters_by_suite_and_scenario(client: TestClient, results_warehouse: str) -> None:
    from factories import all_tables, run_record

    from evals.warehouse import Warehouse

    record = run_record("org/model-c", day=3, suite="full", scenario="chat")
    publish_run(Warehouse(results_warehouse), record, all_tables(record, tasks={"arc_easy": 0.9, "gsm8k": 0.9}))
    html = client.get("/").text
    assert '<option value="full">full</option>' in html and '<option value="chat">chat</option>' in html
    curves = figure_blocks(client.get("/", params={"scenario": "chat"}).text)["fig-latency-concurrency"]
    assert {t["name"] for t in curves["data"] if t["meta"]["role"] == "model"} == {"org/model-c"}
    html = client.get("/", params={"suite": "smoke", "scenario": ""}).text
    assert '<option value="smoke" selected>' in html
    pareto = figure_blocks(html)["fig-pareto"]
    assert "org/model-c" not in {t["name"] for t in pareto["data"]}


def test_api_leaderboard(client: TestClient, results_warehouse: str, malicious_model_id: str) -> None:
    response = client.get("/api/leaderboard")
    assert response.status_code == 200
    body = json.loads(response.text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert body["warehouse"] == results_warehouse
    assert [r["model_id"] for r in body["rows"]] == ["org/model-a", "org/model-b", malicious_model_id]
    top = body["rows"][0]
    assert top["revision"] == sha("a-v2") and top["eval_date"] == "2026-11-03"
    assert top["accuracy"] == pytest.approx(0.60)
    assert top["ttft_p95_ms"] == pytest.approx(132.0) and top["reference_load"] == 1.0 and top["capacity"] == 8.0
    assert top["usd_per_1m_at_slo"] == pytest.approx(_cost_at_slo(results_warehouse, "org/model-a", load=8.0))


def test_api_trends(client: TestClient, results_warehouse: str, malicious_model_id: str) -> None:
    body = client.get("/api/trends", params={"model_id": "org/model-a"}).json()
    [series] = body["models"]
    assert series["model_id"] == "org/model-a"
    points = series["points"]
    assert [p["eval_date"] for p in points] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [p["accuracy"] for p in points] == pytest.approx([0.50, 0.52, 0.60])
    assert [p["revision"] for p in points] == [sha("a-v1"), sha("a-v1"), sha("a-v2")]
    assert all(p["ttft_p95_ms"] == pytest.approx(132.0) for p in points)  # at the reference level

    everything = client.get("/api/trends").json()
    assert {s["model_id"] for s in everything["models"]} == {"org/model-a", "org/model-b", malicious_model_id}

    missing = client.get("/api/trends", params={"model_id": "org/unknown"})
    assert missing.status_code == 404 and "org/unknown" in missing.json()["detail"]


def test_a_night_with_only_latency_still_plots(client: TestClient, results_warehouse: str) -> None:
    from factories import latency_rows, run_record

    from evals.warehouse import Warehouse

    record = run_record("org/model-a", day=4, revision=sha("a-v2"), suite=None, suite_version=None)
    publish_run(Warehouse(results_warehouse), record, {"latency": latency_rows(record, ttft_p95=100.0)})
    points = client.get("/api/trends", params={"model_id": "org/model-a"}).json()["models"][0]["points"]
    assert points[-1]["eval_date"] == "2026-11-04"
    assert points[-1]["accuracy"] is None and points[-1]["ttft_p95_ms"] == pytest.approx(110.0)
    assert client.get("/").status_code == 200


def test_empty_warehouse_says_so(client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'empty'}")
    response = client.get("/")
    assert response.status_code == 200
    assert "No published runs in this warehouse yet" in response.text
    assert client.get("/api/leaderboard").json()["rows"] == []
    assert client.get("/api/trends").json()["models"] == []


def test_settings_are_read_per_request(
    client: TestClient, results_warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(client.get("/api/leaderboard").json()["rows"]) == 3
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'other'}")
    assert client.get("/api/leaderboard").json()["rows"] == []


def test_bad_settings_give_a_clear_message(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", "ftp://nowhere/<b>")
    response = client.get("/")
    assert response.status_code == 503
    assert "The results warehouse could not be read" in response.text
    assert "EVALS_WAREHOUSE" in response.text and "<b>" not in response.text
    assert "Traceback" not in response.text
    api = client.get("/api/leaderboard")
    assert api.status_code == 503 and "EVALS_WAREHOUSE" in api.json()["detail"]


@pytest.mark.slow
def test_unreachable_warehouse_gives_a_clear_message(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # A loopback port nobody listens on: the S3 client fails to connect (after its own retries).
    monkeypatch.setenv("EVALS_WAREHOUSE", "s3://results/warehouse")
    monkeypatch.setenv("EVALS_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    response = client.get("/")
    assert response.status_code == 503
    assert "could not be read" in response.text and "Traceback" not in response.text


def test_refused_requests_point_to_the_login(results_warehouse: str) -> None:
    from fastapi import Depends, HTTPException

    def deny() -> None:
        raise HTTPException(status_code=401, detail="Not authenticated")

    with TestClient(create_app(dependencies=[Depends(deny)])) as client:
        page = client.get("/")
        assert page.status_code == 401 and "Sign in to Airflow" in page.text and 'href="../"' in page.text
        api = client.get("/api/leaderboard")
        assert api.status_code == 401 and api.json() == {"detail": "Not authenticated"}


def test_api_rows_hold_every_promised_column(client: TestClient, results_warehouse: str) -> None:
    from evals.ui.queries import LEADERBOARD_COLUMNS

    rows = client.get("/api/leaderboard").json()["rows"]
    assert rows and all(set(LEADERBOARD_COLUMNS) <= set(row) for row in rows)
