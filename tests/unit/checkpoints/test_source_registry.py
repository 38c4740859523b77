"""The lazy source registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evals.checkpoints import registry
from evals.checkpoints.sources.local import LocalSource
from evals.errors import ConfigError


def test_unknown_source_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown checkpoint source 'gcs'; known: endpoint, hf, local, package, s3"):
        registry.get_source_class("gcs")


def test_names_resolve_to_classes() -> None:
    assert registry.get_source_class("local") is LocalSource
    assert registry.get_source_class("hf").name == "hf"


def test_listing_and_parsing_a_watchlist_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from evals.checkpoints import registry\n"
        "from evals.checkpoints.watchlist import load_watchlist\n"
        "registry.known_sources(); load_watchlist()\n"
        "heavy = [m for m in ('huggingface_hub', 'torch', 'transformers', 'pyarrow', 'boto3') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_register_a_source_by_import_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "SOURCES", registry.SOURCES.copy())
    registry.register_source("mine", "evals.checkpoints.sources.local:LocalSource")
    assert registry.get_source_class("mine") is LocalSource
    assert "mine" in registry.known_sources()
    with pytest.raises(ConfigError):
        registry.register_source("Bad Name", "x:y")
