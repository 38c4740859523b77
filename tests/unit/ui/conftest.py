"""A small file:// warehouse with a few runs, and a test client of the Results app reading it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import all_tables, publish_run, run_record, sha
from fastapi.testclient import TestClient

from evals.ui.app import create_app
from evals.warehouse import Warehouse

# Everything a hostile checkpoint name could try: markup, attribute breakout, an entity.
MALICIOUS = "evil/<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;"


@pytest.fixture
def results_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """model-a on three nights (a new revision on the third), model-b on one, and a malicious model_id."""
    uri = f"file://{tmp_path / 'warehouse'}"
    monkeypatch.setenv("EVALS_WAREHOUSE", uri)
    wh = Warehouse(uri)
    for day, accuracy in ((1, 0.50), (2, 0.52), (3, 0.60)):
        record = run_record("org/model-a", day=day, revision=sha("a-v2" if day == 3 else "a-v1"))
        publish_run(wh, record, all_tables(record, tasks={"arc_easy": accuracy, "gsm8k": accuracy}))
    for model, accuracy in (("org/model-b", 0.40), (MALICIOUS, 0.10)):
        record = run_record(model, day=2)
        publish_run(wh, record, all_tables(record, tasks={"arc_easy": accuracy, "gsm8k": accuracy}))
    return uri


@pytest.fixture
def malicious_model_id() -> str:
    return MALICIOUS


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client
