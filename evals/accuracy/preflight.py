"""Checks of a checkpoint folder before a model is loaded: weights, config, tokenizer, safetensors headers.

The pickle refusal and the safetensors check are :mod:`evals.checkpoints.safety`'s: the ones materialization uses.
"""

from __future__ import annotations

import json
from pathlib import Path

from evals.checkpoints.safety import BrokenCheckpoint, check_safetensors, is_pickle_file, refuse_pickle_weights

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model", "spiece.model")


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
        refuse_pickle_weights(directory, sorted(p.name for p in directory.iterdir() if is_pickle_file(p.name)))
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


__all__ = ["BrokenCheckpoint", "check_checkpoint", "check_safetensors"]
