import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evals.ui.asgi import LazyASGIApp

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("fastapi", "duckdb", "pyarrow", "pandas", "numpy", "plotly", "evals.ui.app", "evals.warehouse.views")


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    """The scheduler and DAG processor load plugins too; this one must cost them nothing."""
    code = (
        "import sys, json, time\n"
        "import airflow.plugins_manager\n"
        f"sys.path.insert(0, {str(REPO / 'plugins')!r})\n"
        "before = set(sys.modules); t = time.perf_counter()\n"
        "import evals_results\n"
        "elapsed = time.perf_counter() - t\n"
        "p = evals_results.EvalsResultsPlugin\n"
        "print(json.dumps({'new': sorted(set(sys.modules) - before), 'elapsed': elapsed, 'name': p.name,"
        " 'apps': [{k: v for k, v in a.items() if k != 'app'} for a in p.fastapi_apps],"
        " 'views': p.external_views}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [m for m in info["new"] if m.split(".")[0] in HEAVY or m in HEAVY]
    assert info["elapsed"] < 0.5
    assert info["name"] == "evals_results"
    assert info["apps"] == [{"url_prefix": "/evals", "name": "Evaluation results"}]
    [view] = info["views"]
    assert view["destination"] == "nav" and view["name"] == "Results"
    # Relative, so the UI resolves it against its base URL (Airflow behind a path prefix still works).
    assert view["href"] == "evals/" and view["url_route"]


def test_lazy_app_builds_once_on_first_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])

    built: list[int] = []

    def factory() -> Any:
        built.append(1)
        return inner

    monkeypatch.setattr(sys.modules[__name__], "factory_for_test", factory, raising=False)
    app = LazyASGIApp(f"{__name__}:factory_for_test")
    assert not built

    async def noop() -> Any:
        return {}

    async def send(message: Any) -> None:
        return None

    asyncio.run(app({"type": "http", "path": "/a"}, noop, send))
    asyncio.run(app({"type": "http", "path": "/b"}, noop, send))
    assert built == [1] and calls == ["/a", "/b"]


def test_lazy_app_rejects_a_malformed_factory() -> None:
    with pytest.raises(ValueError, match=r"package\.module:function"):
        LazyASGIApp("evals.ui.app")
