"""Safety policy: allowed files, pickle refusal, custom code, size limit, tree and safetensors checks."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from evals.checkpoints import safety
from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.safety import BrokenCheckpoint, RemoteFile
from evals.checkpoints.testing import make_checkpoint
from evals.errors import CheckpointRejected, TerminalError

REF = CheckpointRef("hf", "org/name", "0123456789abcdef0123456789abcdef01234567")


def _files(*names: str, size: int = 10) -> list[RemoteFile]:
    return [RemoteFile(name, size) for name in names]


def test_selects_only_data_files() -> None:
    listed = _files(
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "pytorch_model.bin",
        "modeling_evil.py",
        "original/consolidated.pth",
        ".gitattributes",
        "chat_template.jinja",
    )
    chosen = [f.path for f in safety.select_files(REF, listed, max_bytes=10**9, allow_code=False)]
    assert chosen == [
        "chat_template.jinja",
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    with_code = [f.path for f in safety.select_files(REF, listed, max_bytes=10**9, allow_code=True)]
    assert "modeling_evil.py" in with_code and "pytorch_model.bin" not in with_code


@pytest.mark.parametrize(
    "pickle_name", ["pytorch_model.bin", "model.pt", "weights.pth", "last.ckpt", "model.pkl", "model.pickle"]
)
def test_pickle_only_checkpoints_are_refused(pickle_name: str) -> None:
    with pytest.raises(CheckpointRejected, match=rf"only pickle weights \({pickle_name}\)"):
        safety.select_files(REF, _files("config.json", pickle_name), max_bytes=10**9, allow_code=False)


def test_no_weights_or_no_config_is_refused() -> None:
    with pytest.raises(CheckpointRejected, match=r"no \*\.safetensors weights"):
        safety.select_files(REF, _files("config.json"), max_bytes=10**9, allow_code=False)
    with pytest.raises(CheckpointRejected, match=r"no config\.json"):
        safety.select_files(REF, _files("model.safetensors"), max_bytes=10**9, allow_code=False)


def test_size_limit_counts_only_what_would_be_downloaded() -> None:
    listed = [RemoteFile("config.json", 100), RemoteFile("model.safetensors", 900), RemoteFile("x.bin", 10**12)]
    assert len(safety.select_files(REF, listed, max_bytes=1000, allow_code=False)) == 2
    with pytest.raises(CheckpointRejected, match="1,000 bytes, over the limit of 999"):
        safety.select_files(REF, listed, max_bytes=999, allow_code=False)


@pytest.mark.parametrize("path", ["../escape.safetensors", "/etc/passwd", "a//b.json", "a\\..\\b.json", ""])
def test_unsafe_listed_paths_are_refused(path: str) -> None:
    with pytest.raises(CheckpointRejected, match="unsafe file path"):
        safety.select_files(REF, _files("config.json", "model.safetensors", path), max_bytes=10**9, allow_code=False)


def test_allowlist_needs_the_exact_model_and_revision() -> None:
    from evals.checkpoints import allows_remote_code
    from evals.settings import get_settings

    assert allows_remote_code(REF, get_settings(trust_remote_code_allowlist=[f"org/name@{REF.revision}"]))
    assert not allows_remote_code(REF, get_settings())
    assert safety.is_allowlisted(REF, [f"org/name@{REF.revision}"])
    assert not safety.is_allowlisted(REF, ["org/name@" + "1" * 40, "org/name", f"org/other@{REF.revision}"])
    assert not safety.is_allowlisted(CheckpointRef("hf", "org/name"), ["org/name@None"])


@pytest.mark.parametrize("config_name", ["config.json", "tokenizer_config.json"])
def test_auto_map_is_refused_unless_allowlisted(tmp_path: Path, config_name: str) -> None:
    make_checkpoint(tmp_path)
    data = json.loads((tmp_path / config_name).read_text())
    data["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (tmp_path / config_name).write_text(json.dumps(data))
    with pytest.raises(CheckpointRejected, match=f"custom code \\({config_name}: auto_map\\).*not in EVALS_TRUST"):
        safety.check_custom_code(REF, tmp_path, allowlisted=False)
    safety.check_custom_code(REF, tmp_path, allowlisted=True)


def test_check_tree_accepts_exactly_the_listing(tmp_path: Path) -> None:
    make_checkpoint(tmp_path)
    listing = [RemoteFile(p.name, p.stat().st_size) for p in tmp_path.iterdir()]
    safety.check_tree(REF, tmp_path, listing)
    (tmp_path / "surprise.bin").write_bytes(b"x")
    with pytest.raises(CheckpointRejected, match=r"unexpected files after download: surprise\.bin"):
        safety.check_tree(REF, tmp_path, listing)
    (tmp_path / "surprise.bin").unlink()
    with pytest.raises(CheckpointRejected, match="listing said 1"):
        safety.check_tree(REF, tmp_path, [*listing[:-1], RemoteFile(listing[-1].path, 1)])


def _safetensors(path: Path, *, data_len: int = 8, declared_end: int = 8) -> Path:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, declared_end]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * data_len)
    return path


def test_a_pickle_renamed_to_safetensors_is_caught(tmp_path: Path, evil_pickle: tuple[bytes, Path]) -> None:
    payload, marker = evil_pickle
    (tmp_path / "model.safetensors").write_bytes(payload)
    with pytest.raises(CheckpointRejected, match="not a valid safetensors file"):
        safety.check_safetensors(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"[]")
    with pytest.raises(CheckpointRejected, match="header is not an object"):
        safety.check_safetensors(tmp_path / "model.safetensors")
    assert not marker.exists()


def test_truncated_and_garbage_safetensors_name_the_file(tmp_path: Path) -> None:
    truncated = _safetensors(tmp_path / "a.safetensors", data_len=4, declared_end=8)
    with pytest.raises(
        BrokenCheckpoint, match=r"a\.safetensors: not a valid safetensors file \(truncated: tensors need"
    ):
        safety.check_safetensors(truncated)
    garbage = tmp_path / "b.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"nope")
    with pytest.raises(BrokenCheckpoint, match=r"b\.safetensors: not a valid.*not JSON") as err:
        safety.check_safetensors(garbage)
    assert isinstance(err.value, CheckpointRejected) and isinstance(err.value, TerminalError)
    tiny = tmp_path / "c.safetensors"
    tiny.write_bytes(b"abc")
    with pytest.raises(BrokenCheckpoint, match=r"c\.safetensors"):
        safety.check_safetensors(tiny)
    _safetensors(tmp_path / "d.safetensors", data_len=8, declared_end=8)
    safety.check_safetensors(tmp_path / "d.safetensors")


def test_real_safetensors_files_pass(tiny_model_dir: Path) -> None:
    for path in tiny_model_dir.glob("*.safetensors"):
        safety.check_safetensors(path)
