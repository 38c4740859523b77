"""The local source and materialize() end to end on the filesystem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals.checkpoints.content import directory_revision, write_manifest
from evals.checkpoints.materialize import materialize
from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.sources.local import LocalSource
from evals.checkpoints.testing import make_checkpoint
from evals.errors import CheckpointRejected, ConfigError
from evals.settings import Settings


def _source(settings: Settings, root: Path) -> LocalSource:
    return LocalSource(settings, {"path": root})


def test_discovers_checkpoint_dirs_pinned_by_content(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "models"
    make_checkpoint(root / "org" / "alpha", seed=1)
    make_checkpoint(root / "beta", seed=2, extra_files={"README.md": b"ignored by the hash"})
    (root / "org" / "notes.txt").write_text("not a checkpoint")
    source = _source(settings, root)
    refs = sorted(source.discover(), key=str)
    assert [r.model_id for r in refs] == ["beta", "org/alpha"]
    assert refs[1].revision == directory_revision(root / "org" / "alpha")
    assert refs[0].revision != refs[1].revision and len(refs[0].revision or "") == 64
    assert refs[1].uri == (root / "org" / "alpha").as_uri()
    assert source.discover() == source.discover()
    # Same bytes elsewhere: same revision. One changed weight: a new revision.
    make_checkpoint(tmp_path / "copy", seed=1)
    assert directory_revision(tmp_path / "copy") == refs[1].revision
    make_checkpoint(root / "org" / "alpha", seed=3)
    assert _source(settings, root).discover()[1].revision != refs[1].revision


def test_a_revision_named_dir_must_match_its_content(settings: Settings, tmp_path: Path) -> None:
    good = make_checkpoint(tmp_path / "stage" / "x")
    revision = directory_revision(good)
    (tmp_path / "root" / "org" / "m").mkdir(parents=True)
    good.rename(tmp_path / "root" / "org" / "m" / revision)
    make_checkpoint(tmp_path / "root" / "org" / "bad" / ("0" * 64))
    source = _source(settings, tmp_path / "root")
    refs = source.discover()
    assert [str(r) for r in refs] == [f"local:org/m@{revision}"]
    assert any("named 0000" in p and "content hash" in p for p in source.problems)


def test_materialize_copies_allowed_files_into_a_sha_keyed_cache(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "models"
    make_checkpoint(root / "org" / "alpha", extra_files={"pytorch_model.bin": b"pickle", "modeling_x.py": b"code"})
    ref = _source(settings, root).discover()[0]
    path = materialize(ref, settings=settings)
    assert path == settings.cache_dir / "checkpoints" / "local" / "org~alpha" / str(ref.revision)
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert directory_revision(path) == ref.revision
    assert materialize(str(ref), settings=settings, watchlist=_watchlist(tmp_path, root)) == path


def _watchlist(tmp_path: Path, root: Path) -> Path:
    path = tmp_path / "watch.yaml"
    path.write_text(json.dumps({"sources": [{"source": "local", "path": str(root)}]}))
    return path


def test_changed_content_no_longer_matches_the_pinned_revision(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "models"
    make_checkpoint(root / "m", seed=1)
    ref = _source(settings, root).discover()[0]
    make_checkpoint(root / "m", seed=5)
    with pytest.raises(CheckpointRejected, match="now hashes to"):
        materialize(ref, settings=settings)
    assert not (settings.cache_dir / "checkpoints" / "local" / "m").exists()


def test_manifest_hashes_are_rechecked_on_copy(settings: Settings, tmp_path: Path) -> None:
    directory = make_checkpoint(tmp_path / "models" / "m")
    revision = write_manifest(directory)
    assert revision == directory_revision(directory)
    ref = _source(settings, tmp_path / "models").discover()[0]
    assert ref.revision == revision
    # Tamper with the weights but keep the manifest: discovery trusts it, the copy catches it.
    (directory / "model.safetensors").write_bytes((directory / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CheckpointRejected, match=r"model\.safetensors changed"):
        materialize(ref, settings=settings)


def test_pickle_only_checkpoint_is_refused_and_never_unpickled(
    settings: Settings, tmp_path: Path, evil_pickle: tuple[bytes, Path]
) -> None:
    payload, marker = evil_pickle
    make_checkpoint(tmp_path / "models" / "evil", safetensors=False, extra_files={"pytorch_model.bin": payload})
    ref = _source(settings, tmp_path / "models").discover()[0]
    with pytest.raises(CheckpointRejected, match=r"only pickle weights \(pytorch_model.bin\)"):
        materialize(ref, settings=settings)
    assert not marker.exists()


def test_auto_map_refused_unless_this_exact_revision_is_allowlisted(settings: Settings, tmp_path: Path) -> None:
    config = {"model_type": "evil", "auto_map": {"AutoModelForCausalLM": "modeling_evil.Evil"}}
    make_checkpoint(
        tmp_path / "models" / "org" / "custom",
        config=config,
        extra_files={"modeling_evil.py": b"raise SystemExit('never imported')"},
    )
    ref = _source(settings, tmp_path / "models").discover()[0]
    with pytest.raises(CheckpointRejected, match="requires custom code"):
        materialize(ref, settings=settings)
    other = settings.model_copy(update={"trust_remote_code_allowlist": [f"org/custom@{'0' * 64}"]})
    with pytest.raises(CheckpointRejected, match="requires custom code"):
        materialize(ref, settings=other)
    allowed = settings.model_copy(update={"trust_remote_code_allowlist": [f"org/custom@{ref.revision}"]})
    path = materialize(ref, settings=allowed)
    assert (path / "modeling_evil.py").exists()


def test_size_limit_is_enforced_before_copying(settings: Settings, tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "models" / "m")
    ref = _source(settings, tmp_path / "models").discover()[0]
    small = settings.model_copy(update={"checkpoint_max_bytes": 100})
    with pytest.raises(CheckpointRejected, match="over the limit of 100"):
        materialize(ref, settings=small)
    assert not (settings.cache_dir / "checkpoints").exists()


def test_unknown_location_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    empty = tmp_path / "w.yaml"
    empty.write_text("sources: []\n")
    with pytest.raises(ConfigError, match="no location known"):
        materialize(CheckpointRef("local", "org/m", "a" * 64), settings=settings, watchlist=empty)


_MATERIALIZE = """
import sys
from evals.checkpoints.materialize import materialize
from evals.checkpoints.ref import CheckpointRef
print(materialize(CheckpointRef("local", "big", sys.argv[1], uri=sys.argv[2])))
"""


def test_concurrent_materialization_shares_one_intact_copy(settings: Settings, tmp_path: Path) -> None:
    directory = make_checkpoint(tmp_path / "models" / "big", extra_files={"model-2.safetensors": b""})
    from evals.checkpoints.testing import write_safetensors

    write_safetensors(directory / "model-2.safetensors", {"w": [0.5] * 2_000_000})  # 8 MB: copies overlap
    ref = _source(settings, tmp_path / "models").discover()[0]
    env = {"EVALS_CACHE_DIR": str(settings.cache_dir), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MATERIALIZE, str(ref.revision), str(ref.uri)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    assert len(set(outputs)) == 1
    final = Path(outputs[0])
    assert directory_revision(final) == ref.revision
    leftovers = [p.name for p in final.parent.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
