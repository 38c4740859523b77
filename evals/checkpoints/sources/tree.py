"""Shared by the s3 and local sources: checkpoint directories in a file tree and their manifests."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from evals.checkpoints.content import MANIFEST_NAME, tree_hash
from evals.checkpoints.ref import CheckpointRef, InvalidRef, is_revision, validate_model_id
from evals.checkpoints.safety import RemoteFile, check_relative_path, is_data_file
from evals.errors import CheckpointRejected

log = logging.getLogger(__name__)

_MARKERS = ("config.json", MANIFEST_NAME)


def checkpoint_dirs(paths: Iterable[str]) -> list[str]:
    """Directories (relative, posix) holding a config.json or manifest.json; nested ones are not separate."""
    candidates = sorted({str(PurePosixPath(p).parent) for p in paths if PurePosixPath(p).name in _MARKERS})
    found: list[str] = []
    for candidate in candidates:
        if candidate == ".":
            continue
        if not any(candidate.startswith(parent + "/") for parent in found):
            found.append(candidate)
    return found


def split_model_dir(rel_dir: str) -> tuple[str, str | None]:
    """``org/name/<sha>`` -> (``org/name``, sha); ``org/name`` -> (``org/name``, None)."""
    parts = rel_dir.split("/")
    if len(parts) > 1 and is_revision(parts[-1]):
        return "/".join(parts[:-1]), parts[-1]
    return rel_dir, None


def parse_manifest(ref_text: str, raw: bytes) -> tuple[str, list[RemoteFile]]:
    """A manifest's revision and files; CheckpointRejected when malformed."""
    try:
        data: Any = json.loads(raw)
        files = [
            RemoteFile(str(path), int(entry["size"]), str(entry["sha256"]))
            for path, entry in dict(data["files"]).items()
        ]
        revision = str(
            data.get("revision") or tree_hash({f.path: str(f.sha256) for f in files if is_data_file(f.path)})
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointRejected(f"{ref_text}: malformed {MANIFEST_NAME}: {exc}") from exc
    return revision, files


def listing_revision(ref: CheckpointRef, files: list[RemoteFile]) -> str:
    """The tree hash of a listing's data files (each must carry its SHA-256)."""
    hashes = {}
    for item in files:
        check_relative_path(ref, item.path)
        if is_data_file(item.path):
            if item.sha256 is None:
                raise CheckpointRejected(f"{ref}: no SHA-256 known for {item.path}")
            hashes[item.path] = item.sha256
    return tree_hash(hashes)


def make_ref(source: str, rel_dir: str, revision: str, uri: str, size: int | None) -> CheckpointRef | str:
    """A ref for a discovered directory, or the reason it is not one (never raises: other entries go on)."""
    from evals.checkpoints.ref import CheckpointMeta

    model_id, _ = split_model_dir(rel_dir)
    try:
        validate_model_id(model_id)
        return CheckpointRef(source, model_id, revision, uri=uri, meta=CheckpointMeta(size_bytes=size))
    except InvalidRef as exc:
        return f"{uri}: {exc}"
