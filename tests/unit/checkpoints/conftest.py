"""Fixtures of the checkpoints unit tests: settings on a temp cache, a pickle that would leave a marker file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from evals.settings import Settings, get_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings(cache_dir=tmp_path / "cache", warehouse=f"file://{tmp_path / 'warehouse'}")


def malicious_pickle(marker: Path) -> bytes:
    """A pickle whose loading creates ``marker``: proof of whether anything was ever unpickled."""

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (open, (str(marker), "w"))

    return pickle.dumps(Payload())


@pytest.fixture
def evil_pickle(tmp_path: Path) -> tuple[bytes, Path]:
    marker = tmp_path / "PWNED"
    payload = malicious_pickle(marker)
    # The payload is live: loading a copy aimed at another marker does create that file.
    probe = tmp_path / "probe-marker"
    pickle.loads(malicious_pickle(probe)).close()
    assert probe.exists()
    return payload, marker
