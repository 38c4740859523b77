"""Builders of small, well-formed checkpoint directories for tests and demos (no torch needed)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

TINY_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4,
    "num_hidden_layers": 1,
    "vocab_size": 8,
}


def write_safetensors(path: Path, tensors: dict[str, list[float]]) -> None:
    """A valid float32 safetensors file holding 1-D tensors (the format: u64 header length, JSON header, data)."""
    header: dict[str, Any] = {}
    data = b""
    for name, values in tensors.items():
        blob = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": [len(values)], "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)


def make_checkpoint(
    directory: Path,
    *,
    seed: float = 1.0,
    config: dict[str, Any] | None = None,
    safetensors: bool = True,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """config.json, tokenizer files and (unless ``safetensors=False``) a ``model.safetensors`` in ``directory``.

    ``seed`` changes the weights (hence the content hash); ``extra_files`` adds anything else verbatim.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config if config is not None else TINY_CONFIG))
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 16}))
    (directory / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    if safetensors:
        write_safetensors(directory / "model.safetensors", {"weight": [seed, seed * 2, seed * 3, seed * 4]})
    for name, content in (extra_files or {}).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content)
    return directory
