"""Content hashes of checkpoint directories: per-file SHA-256, the tree hash used as revision, manifests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evals.checkpoints.models import file_sha256
from evals.checkpoints.safety import is_data_file

MANIFEST_NAME = "manifest.json"


def tree_hash(file_hashes: Mapping[str, str]) -> str:
    """The revision of a non-git checkpoint: SHA-256 over its sorted (relative path, file SHA-256) pairs."""
    digest = hashlib.sha256()
    for path in sorted(file_hashes):
        digest.update(f"{path}\0{file_hashes[path]}\n".encode())
    return digest.hexdigest()


def data_files(directory: Path) -> list[str]:
    """Relative paths of the files that make up a checkpoint (weights, configs, tokenizer), sorted."""
    return sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
        and is_data_file(p.relative_to(directory).as_posix())
    )


def hash_files(directory: Path, paths: list[str]) -> dict[str, str]:
    return {path: file_sha256(directory / path) for path in paths}


def directory_revision(directory: Path) -> str:
    """Tree hash of a directory's data files (what the local and s3 sources pin to)."""
    return tree_hash(hash_files(directory, data_files(directory)))


def build_manifest(directory: Path, *, revision_id: str | None = None) -> dict[str, Any]:
    """A manifest of a checkpoint directory: every data file's size and SHA-256, and its revision."""
    hashes = hash_files(directory, data_files(directory))
    files = {path: {"size": (directory / path).stat().st_size, "sha256": sha} for path, sha in hashes.items()}
    revision = revision_id or tree_hash(hashes)
    return {"revision": revision, "files": files}


def write_manifest(directory: Path, *, revision_id: str | None = None) -> str:
    """Write ``manifest.json`` into ``directory``; returns the revision it declares."""
    manifest = build_manifest(directory, revision_id=revision_id)
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return str(manifest["revision"])


def pinned_revision(revision: str | None, directory: Path | None, *, publishing: bool) -> str:
    """The revision a CLI run records: ``--revision`` (checked), else the directory's content hash.

    A run that will be published must be pinned: without a revision and without a directory to hash (an
    ``--endpoint`` or ``--base-url`` run), it is refused here, before any work, instead of being quarantined later.
    """
    from evals.checkpoints.ref import validate_revision
    from evals.errors import ConfigError

    if revision:
        return validate_revision(revision)
    if directory is not None:
        return directory_revision(directory)
    if publishing:
        raise ConfigError(
            "refusing to publish a run without a pinned revision: pass --revision with the served checkpoint's "
            "full commit SHA (40 hex) or content hash (64 hex), or evaluate a --checkpoint directory (its content "
            "hash is used)"
        )
    return "unknown"
