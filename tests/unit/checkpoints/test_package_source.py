"""The package source: the offline SmolLM2 (and tiny Llama) as pinned, materializable refs."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.checkpoints.materialize import materialize
from evals.checkpoints.models import file_sha256, smollm2_gguf_path
from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.sources.package import PackageSource
from evals.errors import CheckpointRejected, ConfigError
from evals.settings import Settings


def test_discovers_smollm2_pinned_to_the_gguf_sha256(settings: Settings) -> None:
    (ref,) = PackageSource(settings).discover()
    assert ref.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert ref.revision == file_sha256(smollm2_gguf_path())
    assert ref.meta.params == 134_515_008 and ref.meta.license == "apache-2.0"


def test_a_different_pinned_sha_is_refused(settings: Settings) -> None:
    ref = CheckpointRef("package", "HuggingFaceTB/SmolLM2-135M-Instruct", "0" * 64)
    with pytest.raises(CheckpointRejected, match="installed package holds revision"):
        materialize(ref, settings=settings)
    with pytest.raises(ConfigError, match="no packaged model 'org/other'"):
        materialize(CheckpointRef("package", "org/other", "0" * 64), settings=settings)


def test_materialize_tiny_llama(settings: Settings, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Point the cache at the shared test-model cache so nothing is rebuilt.
    shared = settings.model_copy(update={"cache_dir": tiny_model_dir.parents[2]})
    (ref,) = PackageSource(shared, {"model": "tiny-llama"}).discover()
    assert materialize(ref, settings=shared) == tiny_model_dir


@pytest.mark.slow
def test_materialize_smollm2(settings: Settings, smollm2_dir: Path) -> None:
    shared = settings.model_copy(update={"cache_dir": smollm2_dir.parents[2]})
    (ref,) = PackageSource(shared).discover()
    path = materialize(str(ref), settings=shared)
    assert path == smollm2_dir and (path / "model.safetensors").stat().st_size > 500_000_000
