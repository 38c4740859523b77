"""What may be materialized or loaded: allowed files, pickle and custom-code refusal, size limits, file checks."""

from __future__ import annotations

import fnmatch
import json
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from evals.checkpoints.ref import CheckpointRef
from evals.errors import CheckpointRejected

log = logging.getLogger(__name__)

# Data only: weights in safetensors, JSON configs, tokenizer vocabularies, chat templates.
DATA_PATTERNS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
)
CODE_PATTERNS = ("*.py",)
# Formats whose loading runs pickle, i.e. can execute arbitrary code: refused at download and before loading.
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # safetensors caps its JSON header at 100 MB


@dataclass(frozen=True)
class RemoteFile:
    """A file of a checkpoint at its pinned revision, as a source lists it (size and hash when known)."""

    path: str
    size: int | None = None
    sha256: str | None = None


def _matches(path: str, patterns: Iterable[str]) -> bool:
    name = PurePosixPath(path).name
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def is_data_file(path: str) -> bool:
    return _matches(path, DATA_PATTERNS)


def is_code_file(path: str) -> bool:
    return _matches(path, CODE_PATTERNS)


def is_pickle_file(path: str) -> bool:
    return _matches(path, PICKLE_PATTERNS)


def refuse_pickle_weights(checkpoint: object, pickles: list[str]) -> None:
    """CheckpointRejected when a checkpoint without safetensors weights offers pickle ones (loading runs code)."""
    if pickles:
        raise CheckpointRejected(
            f"{checkpoint}: only pickle weights ({', '.join(pickles[:5])}); refusing them because loading pickle "
            "can execute arbitrary code. Publish safetensors weights."
        )


def check_relative_path(ref: CheckpointRef, path: str) -> None:
    """Refuse a listed path that could escape the destination directory."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or "\\" in path or any(part in ("..", "") for part in path.split("/")):
        raise CheckpointRejected(f"{ref}: unsafe file path {path!r} in the checkpoint listing")


def is_allowlisted(ref: CheckpointRef, allowlist: Iterable[str]) -> bool:
    """True when the exact ``model_id@revision`` may run custom code (never for an unpinned ref)."""
    return ref.revision is not None and f"{ref.model_id}@{ref.revision}" in set(allowlist)


def select_files(
    ref: CheckpointRef, files: Iterable[RemoteFile], *, max_bytes: int, allow_code: bool
) -> list[RemoteFile]:
    """The files to download, or CheckpointRejected naming why the checkpoint cannot be materialized safely."""
    listed = list(files)
    for item in listed:
        check_relative_path(ref, item.path)
    weights = [f for f in listed if f.path.endswith(".safetensors")]
    if not weights:
        refuse_pickle_weights(ref, sorted(f.path for f in listed if is_pickle_file(f.path)))
        raise CheckpointRejected(f"{ref}: no *.safetensors weights in the checkpoint")
    if not any(PurePosixPath(f.path).name == "config.json" for f in listed):
        raise CheckpointRejected(f"{ref}: no config.json in the checkpoint")
    selected = [f for f in listed if is_data_file(f.path) or (allow_code and is_code_file(f.path))]
    unknown = [f.path for f in selected if f.size is None]
    if unknown:
        log.warning("%s: size unknown before download for %s", ref, ", ".join(unknown[:5]))
    total = sum(f.size or 0 for f in selected)
    if total > max_bytes:
        raise CheckpointRejected(
            f"{ref}: checkpoint files total {total:,} bytes, over the limit of {max_bytes:,} "
            "(EVALS_CHECKPOINT_MAX_BYTES)"
        )
    return sorted(selected, key=lambda f: f.path)


def custom_code_entries(directory: Path) -> list[str]:
    """Where a downloaded checkpoint asks for custom code: ``auto_map`` in its config or tokenizer config."""
    found = []
    for name in ("config.json", "tokenizer_config.json"):
        path = directory / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointRejected(f"{name} is not valid JSON: {exc}") from exc
        if isinstance(data, dict) and data.get("auto_map"):
            found.append(f"{name}: auto_map")
    return found


def check_custom_code(ref: CheckpointRef, directory: Path, *, allowlisted: bool) -> None:
    entries = custom_code_entries(directory)
    if entries and not allowlisted:
        raise CheckpointRejected(
            f"{ref}: the checkpoint requires custom code ({'; '.join(entries)}); refused because "
            f"'{ref.model_id}@{ref.revision}' is not in EVALS_TRUST_REMOTE_CODE_ALLOWLIST"
        )


class BrokenCheckpoint(CheckpointRejected):
    """A checkpoint cannot be loaded as it is (a missing or corrupt file): refused, and the message names the file."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


def check_safetensors(path: Path) -> None:
    """BrokenCheckpoint unless ``path`` is well-formed safetensors, checked from its header alone.

    The format: an 8-byte little-endian header length, a JSON object header, then the tensors' bytes. A pickle
    renamed to ``.safetensors`` fails the header checks; a truncated download fails the tensors' byte ranges.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise _not_safetensors(path, f"{size} bytes, shorter than its header size")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len <= 0 or header_len > min(_MAX_SAFETENSORS_HEADER, size - 8):
            raise _not_safetensors(path, f"bad header length {header_len} for a file of {size} bytes")
        try:
            header = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _not_safetensors(path, f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise _not_safetensors(path, "header is not an object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise _not_safetensors(path, f"bad entry for tensor {name!r}") from exc
    if 8 + header_len + end > size:
        raise _not_safetensors(path, f"truncated: tensors need {8 + header_len + end} bytes, the file has {size}")


def _not_safetensors(path: Path, problem: str) -> BrokenCheckpoint:
    return BrokenCheckpoint(path, f"not a valid safetensors file ({problem})")


def check_tree(ref: CheckpointRef, directory: Path, expected: Iterable[RemoteFile]) -> None:
    """After download: exactly the expected files, with the listed sizes, and well-formed safetensors."""
    wanted = {f.path: f for f in expected}
    present = {
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if (p.is_file() or p.is_symlink()) and not p.relative_to(directory).parts[0].startswith(".")
    }
    extra = sorted(present - set(wanted))
    if extra:
        raise CheckpointRejected(f"{ref}: unexpected files after download: {', '.join(extra[:5])}")
    missing = sorted(set(wanted) - present)
    if missing:
        raise CheckpointRejected(f"{ref}: files missing after download: {', '.join(missing[:5])}")
    for path, item in wanted.items():
        local = directory / path
        if local.is_symlink():
            raise CheckpointRejected(f"{ref}: {path} is a symbolic link")
        if item.size is not None and local.stat().st_size != item.size:
            raise CheckpointRejected(f"{ref}: {path} has {local.stat().st_size} bytes, the listing said {item.size}")
        if path.endswith(".safetensors"):
            check_safetensors(local)
