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
    table = re.search(r'<table id="leaderboard">.*?</table>', html, re.S)
    assert table, "no leaderboard table"
    return re.findall(r"<tr><td.*?</tr>", table.group(0), re.S)


def test_page_shows_the_leaderboard_and_trends(client: TestClient, results_warehouse: str) -> None:
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
    # Headline latency is the heaviest load meeting the goodput bar (8): P95 TTFT 120 * 1.8, 800 tokens/s.
    assert ">216.0<" in rows[0] and ">800.0<" in rows[0] and ">95.0%<" in rows[0] and ">$0.6944<" in rows[0]
    # One chart per model and metric: accuracy, P95 TTFT, cost.
    assert html.count("<svg") == 3 * 3
    assert 'aria-label="Headline accuracy"' in html
    assert results_warehouse in html


def test_page_is_self_contained(client: TestClient, results_warehouse: str) -> None:
    response = client.get("/")
    html = response.text
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing may be fetched from elsewhere"
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_malicious_model_id_is_escaped(client: TestClient, results_warehouse: str, malicious_model_id: str) -> None:
    evil = malicious_model_id
    html = client.get("/").text
    assert evil not in html
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert escape(evil) in html  # table cell and trend heading
    # The link to its trends carries it percent-encoded, inside a quoted attribute.
    assert 'href="?model_id=evil%2F%3Cscript%3E' in html
    # Reflected from the query string, it is escaped too.
    html = client.get("/", params={"model_id": evil}).text
    assert evil not in html and "<script>alert(1)" not in html
    assert f"Trends of {escape(evil)}" in html


def test_model_filter_shows_only_that_models_trends(client: TestClient, results_warehouse: str) -> None:
    html = client.get("/", params={"model_id": "org/model-b"}).text
    assert len(leaderboard_rows(html)) == 3  # the leaderboard stays whole
    assert html.count("<svg") == 3
    assert "<h3>org/model-b</h3>" in html and "<h3>org/model-a</h3>" not in html
    html = client.get("/", params={"model_id": "org/unknown"}).text
    assert "No runs of model" in html


def test_api_leaderboard(client: TestClient, results_warehouse: str, malicious_model_id: str) -> None:
    response = client.get("/api/leaderboard")
    assert response.status_code == 200
    body = json.loads(response.text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert body["warehouse"] == results_warehouse
    assert [r["model_id"] for r in body["rows"]] == ["org/model-a", "org/model-b", malicious_model_id]
    top = body["rows"][0]
    assert top["revision"] == sha("a-v2") and top["eval_date"] == "2026-11-03"
    assert top["accuracy"] == pytest.approx(0.60)
    assert top["ttft_p95_ms"] == pytest.approx(216.0) and top["load"] == 8.0
    assert top["usd_per_1m_output_tokens"] == pytest.approx(2.0 / (800 * 3600) * 1e6)


def test_api_trends(client: TestClient, results_warehouse: str, malicious_model_id: str) -> None:
    body = client.get("/api/trends", params={"model_id": "org/model-a"}).json()
    [series] = body["models"]
    assert series["model_id"] == "org/model-a"
    points = series["points"]
    assert [p["eval_date"] for p in points] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [p["accuracy"] for p in points] == pytest.approx([0.50, 0.52, 0.60])
    assert [p["revision"] for p in points] == [sha("a-v1"), sha("a-v1"), sha("a-v2")]
    assert all(p["ttft_p95_ms"] == pytest.approx(216.0) for p in points)

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
    assert points[-1]["accuracy"] is None and points[-1]["ttft_p95_ms"] == pytest.approx(180.0)
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
