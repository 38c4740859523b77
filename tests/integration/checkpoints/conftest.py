"""Fixtures of the checkpoints integration tests: a local fake of the Hub, settings pointing at it."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from evals.settings import Settings, get_settings

if TYPE_CHECKING:
    from integration.checkpoints.fake_hub import FakeHub


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    import huggingface_hub.constants
    from integration.checkpoints.fake_hub import FakeHub

    # The suite runs with HF_HUB_OFFLINE=1 (nothing may reach the real Hub); this server is local.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    yield server
    server.stop()


@pytest.fixture
def hf_settings(tmp_path: Path, hub: FakeHub) -> Settings:
    return get_settings(
        cache_dir=tmp_path / "cache",
        warehouse=f"file://{tmp_path / 'warehouse'}",
        hf_endpoint=hub.endpoint,
        hf_max_attempts=3,
        hf_backoff_s=0.01,
        hf_max_wait_s=1.5,
    )


@pytest.fixture
def evil_pickle(tmp_path: Path) -> tuple[bytes, Path]:
    """A pickle whose loading would create a marker file (checked live on a copy aimed elsewhere)."""
    marker = tmp_path / "PWNED"

    def payload(target: Path) -> bytes:
        class Payload:
            def __reduce__(self) -> tuple[object, tuple[str, str]]:
                return (open, (str(target), "w"))

        return pickle.dumps(Payload())

    probe = tmp_path / "probe-marker"
    pickle.loads(payload(probe)).close()
    assert probe.exists()
    return payload(marker), marker
