"""The Results plugin inside a real `airflow api-server`: page, JSON, plugin listing, and authentication."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from factories import all_tables, publish_run, run_record

from evals.warehouse import Warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
MODELS = {"org/model-a": 0.62, "org/model-b": 0.41, "evil/<script>alert(1)</script>": 0.05}


@dataclass
class ApiServer:
    url: str
    warehouse: str
    home: Path

    def token(self) -> str:
        """Log in as the generated admin, as a user or the UI does."""
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        response = httpx.post(
            f"{self.url}/auth/token", json={"username": "admin", "password": passwords["admin"]}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


def _airflow() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[ApiServer]:
    """`airflow api-server` on a free loopback port with a fresh SQLite DB, the repo's plugins, and a warehouse."""
    warehouse = f"file://{tmp_path / 'warehouse'}"
    wh = Warehouse(warehouse)
    for model, accuracy in MODELS.items():
        record = run_record(model, day=3)
        publish_run(wh, record, all_tables(record, tasks={"arc_easy": accuracy, "gsm8k": accuracy}))

    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # The default SimpleAuthManager with its generated admin password: a real login, no all-admins bypass.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "EVALS_WAREHOUSE": warehouse,
    }
    subprocess.run([_airflow(), "db", "migrate"], env=env, check=True, capture_output=True, timeout=180)
    log_path = tmp_path / "api-server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [_airflow(), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: uvicorn's workers are stopped with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"api-server exited early:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"api-server not healthy in 90 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield ApiServer(url, warehouse, home)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
        shutil.rmtree(home, ignore_errors=True)


def test_results_page_served_by_the_api_server(api_server: ApiServer) -> None:
    # Airflow does not authenticate plugin apps; this one does, like the core API.
    anonymous = httpx.get(f"{api_server.url}/evals/api/leaderboard", timeout=30)
    assert anonymous.status_code == 401 and "rows" not in anonymous.text
    assert "Sign in to Airflow" in httpx.get(f"{api_server.url}/evals/", timeout=30).text
    forged = httpx.get(f"{api_server.url}/evals/", headers={"Authorization": "Bearer not-a-jwt"}, timeout=30)
    assert forged.status_code == 403

    headers = {"Authorization": f"Bearer {api_server.token()}"}
    with httpx.Client(base_url=api_server.url, headers=headers, timeout=30) as client:
        page = client.get("/evals/")
        assert page.status_code == 200, page.text[:2000]
        html = page.text
        assert ">org/model-a</a>" in html and ">org/model-b</a>" in html
        assert "evil/&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
        assert ">0.620<" in html and 'data-figure="fig-trend-accuracy"' in html
        # plotly.js comes from the app itself (the plotly package's own file), behind the same login.
        assert client.get("/evals/static/plotly.min.js").status_code == 200
        assert httpx.get(f"{api_server.url}/evals/static/plotly.min.js", timeout=30).status_code == 401

        board = client.get("/evals/api/leaderboard").json()
        assert [r["model_id"] for r in board["rows"]] == list(MODELS)
        assert board["warehouse"] == api_server.warehouse

        trends = client.get("/evals/api/trends", params={"model_id": "org/model-b"}).json()
        assert [p["eval_date"] for p in trends["models"][0]["points"]] == ["2026-11-03"]

        plugins = client.get("/api/v2/plugins").json()["plugins"]
        [plugin] = [p for p in plugins if p["name"] == "evals_results"]
        assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/evals"]
        [view] = plugin["external_views"]
        assert (view["name"], view["href"], view["destination"]) == ("Results", "evals/", "nav")
        errors = client.get("/api/v2/plugins/importErrors").json()
        assert errors["total_entries"] == 0, errors

        # The navigation entry opens the view inside the Airflow UI (its single-page app serves the route), and
        # the browser sends the UI's session cookie with the framed page.
        assert client.get(f"/plugin/{view['url_route']}").status_code == 200
        cookie = headers["Authorization"].removeprefix("Bearer ")
        framed = httpx.get(f"{api_server.url}/evals/", cookies={"_token": cookie}, timeout=30)
        assert framed.status_code == 200 and ">org/model-a</a>" in framed.text
