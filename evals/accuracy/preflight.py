"""Checks of a checkpoint folder before a model is loaded: weights, config, tokenizer, safetensors headers."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from evals.errors import CheckpointRejected, TerminalError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model", "spiece.model")
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors caps its JSON header at 100 MB


class BrokenCheckpoint(TerminalError):
    """A checkpoint folder cannot be evaluated as it is (missing or corrupt file); the message names the file."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


def check_checkpoint(directory: Path, *, need_tokenizer: bool = True) -> list[Path]:
    """Raise BrokenCheckpoint / CheckpointRejected for a folder that cannot load; return its safetensors files.

    Reads only file headers (a few KB per shard), so it costs nothing next to loading the model.
    """
    if not directory.is_dir():
        raise BrokenCheckpoint(directory, "not a folder")
    if not (directory / "config.json").is_file():
        raise BrokenCheckpoint(directory / "config.json", f"missing; the folder holds: {_listing(directory)}")
    _check_json(directory / "config.json")
    shards = sorted(directory.glob("*.safetensors"))
    if not shards:
        pickles = sorted(p.name for pattern in PICKLE_WEIGHTS for p in directory.glob(pattern))
        if pickles:
            raise CheckpointRejected(
                f"{directory}: only pickle weights ({', '.join(pickles)}); only safetensors are loaded"
            )
        raise BrokenCheckpoint(directory, f"no *.safetensors weights; the folder holds: {_listing(directory)}")
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        _check_index(index, directory)
    for shard in shards:
        check_safetensors(shard)
    if need_tokenizer and not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise BrokenCheckpoint(
            directory / "tokenizer.json", f"missing tokenizer (looked for {', '.join(TOKENIZER_FILES)})"
        )
    if (directory / "tokenizer_config.json").is_file():
        _check_json(directory / "tokenizer_config.json")
    return shards


def check_safetensors(path: Path) -> None:
    """The header parses and every tensor's byte range lies inside the file (catches truncated downloads)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise BrokenCheckpoint(path, f"corrupt safetensors file: {size} bytes, shorter than its header size")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(_MAX_HEADER, size - 8):
            raise BrokenCheckpoint(path, f"corrupt safetensors file: header length {header_len} > file size {size}")
        try:
            header = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BrokenCheckpoint(path, f"corrupt safetensors file: header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise BrokenCheckpoint(path, "corrupt safetensors file: header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BrokenCheckpoint(path, f"corrupt safetensors file: bad entry for tensor {name!r}") from exc
    if 8 + header_len + end > size:
        raise BrokenCheckpoint(
            path, f"corrupt safetensors file: tensors need {8 + header_len + end} bytes, the file has {size}"
        )


def _check_index(index: Path, directory: Path) -> None:
    data = _check_json(index)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        raise BrokenCheckpoint(index, "no weight_map")
    for shard in sorted(set(weight_map.values())):
        if not (directory / shard).is_file():
            raise BrokenCheckpoint(directory / shard, f"missing shard listed in {index.name}")


def _check_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BrokenCheckpoint(path, f"not valid JSON ({exc})") from exc


def _listing(directory: Path, limit: int = 20) -> str:
    names = sorted(p.name for p in directory.iterdir())
    if not names:
        return "nothing"
    return ", ".join(names[:limit]) + (f", ... ({len(names)} files)" if len(names) > limit else "")
