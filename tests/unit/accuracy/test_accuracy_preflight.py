"""The pre-load check of a checkpoint folder (its safetensors check is tested with the safety policy)."""

import json
from pathlib import Path

import pytest

from evals.accuracy.preflight import BrokenCheckpoint, check_checkpoint
from evals.checkpoints.testing import write_safetensors
from evals.errors import CheckpointRejected, TerminalError


def _checkpoint(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    write_safetensors(tmp_path / "model.safetensors", {"w": [1.0, 2.0]})
    return tmp_path


def test_a_complete_folder_passes(tmp_path: Path) -> None:
    assert check_checkpoint(_checkpoint(tmp_path)) == [tmp_path / "model.safetensors"]


def test_folder_without_weights_names_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(BrokenCheckpoint, match=r"no \*\.safetensors weights.*README.md, config.json") as err:
        check_checkpoint(tmp_path)
    assert isinstance(err.value, TerminalError)


@pytest.mark.parametrize("pickle_name", ["pytorch_model.bin", "model.pickle"])
def test_pickle_only_weights_are_rejected(tmp_path: Path, pickle_name: str) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / pickle_name).write_bytes(b"x")
    with pytest.raises(CheckpointRejected, match=rf"only pickle weights \({pickle_name}\)"):
        check_checkpoint(tmp_path)


def test_missing_tokenizer_and_config_are_named(tmp_path: Path) -> None:
    _checkpoint(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(BrokenCheckpoint, match=r"tokenizer\.json: missing tokenizer"):
        check_checkpoint(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(BrokenCheckpoint, match=r"config\.json: missing"):
        check_checkpoint(tmp_path)


def test_a_truncated_shard_is_named(tmp_path: Path) -> None:
    _checkpoint(tmp_path)
    shard = tmp_path / "model.safetensors"
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(BrokenCheckpoint, match=r"model\.safetensors: not a valid safetensors file \(truncated"):
        check_checkpoint(tmp_path)


def test_index_listing_a_missing_shard(tmp_path: Path) -> None:
    _checkpoint(tmp_path)
    index = {"weight_map": {"w": "model.safetensors", "v": "model-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(BrokenCheckpoint, match=r"model-00002\.safetensors: missing shard"):
        check_checkpoint(tmp_path)
