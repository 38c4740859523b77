import json
import struct
from pathlib import Path

import pytest

from evals.accuracy.preflight import BrokenCheckpoint, check_checkpoint, check_safetensors
from evals.errors import CheckpointRejected, TerminalError


def _safetensors(path: Path, *, data_len: int = 8, declared_end: int = 8) -> Path:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, declared_end]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * data_len)
    return path


def _checkpoint(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    _safetensors(tmp_path / "model.safetensors")
    return tmp_path


def test_a_complete_folder_passes(tmp_path: Path) -> None:
    assert check_checkpoint(_checkpoint(tmp_path)) == [tmp_path / "model.safetensors"]


def test_folder_without_weights_names_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(BrokenCheckpoint, match=r"no \*\.safetensors weights.*README.md, config.json") as err:
        check_checkpoint(tmp_path)
    assert isinstance(err.value, TerminalError)


def test_pickle_only_weights_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(CheckpointRejected, match=r"pytorch_model\.bin"):
        check_checkpoint(tmp_path)


def test_missing_tokenizer_and_config_are_named(tmp_path: Path) -> None:
    _checkpoint(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(BrokenCheckpoint, match=r"tokenizer\.json: missing tokenizer"):
        check_checkpoint(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(BrokenCheckpoint, match=r"config\.json: missing"):
        check_checkpoint(tmp_path)


def test_truncated_and_garbage_safetensors_name_the_file(tmp_path: Path) -> None:
    truncated = _safetensors(tmp_path / "a.safetensors", data_len=4, declared_end=8)
    with pytest.raises(BrokenCheckpoint, match=r"a\.safetensors: corrupt safetensors file: tensors need"):
        check_safetensors(truncated)
    garbage = tmp_path / "b.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"nope")
    with pytest.raises(BrokenCheckpoint, match=r"b\.safetensors: corrupt.*not JSON"):
        check_safetensors(garbage)
    tiny = tmp_path / "c.safetensors"
    tiny.write_bytes(b"abc")
    with pytest.raises(BrokenCheckpoint, match=r"c\.safetensors"):
        check_safetensors(tiny)


def test_index_listing_a_missing_shard(tmp_path: Path) -> None:
    _checkpoint(tmp_path)
    index = {"weight_map": {"w": "model.safetensors", "v": "model-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(BrokenCheckpoint, match=r"model-00002\.safetensors: missing shard"):
        check_checkpoint(tmp_path)
