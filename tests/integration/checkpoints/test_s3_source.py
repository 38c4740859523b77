"""The s3 source against a real SeaweedFS server: discovery by layout, manifests, verified downloads."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from factories import publish_run

from evals.checkpoints.content import directory_revision
from evals.checkpoints.discover import discover
from evals.checkpoints.materialize import materialize
from evals.checkpoints.sources.s3 import S3Source, publish
from evals.checkpoints.testing import make_checkpoint
from evals.checkpoints.watchlist import parse_watchlist
from evals.errors import CheckpointRejected
from evals.settings import Settings, get_settings
from evals.warehouse import RunRecord, Warehouse

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_settings(s3_env: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    server = s3_env
    monkeypatch.setenv("EVALS_S3_ENDPOINT", server.endpoint)  # type: ignore[attr-defined]
    return get_settings(cache_dir=tmp_path / "cache", warehouse=f"file://{tmp_path / 'warehouse'}")


@pytest.fixture
def bucket(s3_env: object) -> str:
    return s3_env.new_bucket()  # type: ignore[attr-defined]


def _put(s3_env: object, bucket: str, key: str, body: bytes) -> None:
    s3_env.client().put_object(Bucket=bucket, Key=key, Body=body)  # type: ignore[attr-defined]


def _upload_dir(s3_env: object, bucket: str, prefix: str, directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            _put(s3_env, bucket, f"{prefix}/{path.relative_to(directory).as_posix()}", path.read_bytes())


def test_discover_and_materialize_published_checkpoints(s3_settings: Settings, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/models"
    a = publish(make_checkpoint(tmp_path / "a", seed=1), uri, "acme/alpha", s3_settings)
    b = publish(make_checkpoint(tmp_path / "b", seed=2), uri, "beta", s3_settings, manifest=False)
    source = S3Source(s3_settings, {"uri": uri})
    refs = source.discover()
    assert sorted(map(str, refs)) == sorted([str(a), str(b)]) and source.problems == []
    assert a.revision == directory_revision(tmp_path / "a")
    assert {r.uri for r in refs} == {f"s3://{bucket}/models/acme/alpha/{a.revision}/", b.uri}
    for ref, original in ((a, tmp_path / "a"), (b, tmp_path / "b")):
        path = materialize(next(r for r in refs if r == ref), settings=s3_settings)
        assert directory_revision(path) == ref.revision
        assert (path / "model.safetensors").read_bytes() == (original / "model.safetensors").read_bytes()
        assert not (path / "manifest.json").exists()


def test_bad_layouts_are_reported_not_fatal(s3_env: object, s3_settings: Settings, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/models"
    good = publish(make_checkpoint(tmp_path / "g"), uri, "org/good", s3_settings)
    _upload_dir(s3_env, bucket, "models/org/unversioned", make_checkpoint(tmp_path / "u"))
    _put(s3_env, bucket, f"models/org/broken/{'a' * 64}/manifest.json", b"{not json")
    source = S3Source(s3_settings, {"uri": uri})
    assert source.discover() == [good]
    problems = " | ".join(source.problems)
    assert "org/unversioned/: not under <model_id>/<revision>/" in problems
    assert "malformed manifest.json" in problems


def test_tampered_object_is_refused(s3_env: object, s3_settings: Settings, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/models"
    with_manifest = publish(make_checkpoint(tmp_path / "m", seed=1), uri, "org/m", s3_settings)
    no_manifest = publish(make_checkpoint(tmp_path / "n", seed=2), uri, "org/n", s3_settings, manifest=False)
    evil = make_checkpoint(tmp_path / "evil", seed=7) / "model.safetensors"
    _put(s3_env, bucket, f"models/org/m/{with_manifest.revision}/model.safetensors", evil.read_bytes())
    _put(s3_env, bucket, f"models/org/n/{no_manifest.revision}/model.safetensors", evil.read_bytes())
    with pytest.raises(CheckpointRejected, match=r"model\.safetensors has SHA-256 .*, pinned"):
        materialize(with_manifest, settings=s3_settings)
    with pytest.raises(CheckpointRejected, match=r"fetched content hashes to .*, not the pinned revision"):
        materialize(no_manifest, settings=s3_settings)
    assert not any((s3_settings.cache_dir / "checkpoints" / "s3").glob("*/*/model.safetensors"))


def test_pickle_only_s3_checkpoint_is_refused(
    s3_env: object, s3_settings: Settings, bucket: str, tmp_path: Path, evil_pickle: tuple[bytes, Path]
) -> None:
    payload, marker = evil_pickle
    directory = make_checkpoint(tmp_path / "p", safetensors=False, extra_files={"pytorch_model.bin": payload})
    _upload_dir(s3_env, bucket, f"models/org/pickled/{'b' * 64}", directory)
    (ref,) = S3Source(s3_settings, {"uri": f"s3://{bucket}/models"}).discover()
    with pytest.raises(CheckpointRejected, match=r"only pickle weights \(pytorch_model\.bin\)"):
        materialize(ref, settings=s3_settings)
    assert not marker.exists()


def test_materialize_by_ref_string_finds_the_bucket_in_the_watchlist(
    s3_settings: Settings, bucket: str, tmp_path: Path
) -> None:
    uri = f"s3://{bucket}/models"
    ref = publish(make_checkpoint(tmp_path / "w"), uri, "org/w", s3_settings)
    watchlist = tmp_path / "watch.yaml"
    watchlist.write_text(json.dumps({"sources": [{"source": "s3", "uri": uri}]}))
    path = materialize(f"s3:org/w@{ref.revision}", settings=s3_settings, watchlist=watchlist)
    assert directory_revision(path) == ref.revision


def test_discovery_is_idempotent_against_a_warehouse_with_published_runs(
    s3_settings: Settings, bucket: str, tmp_path: Path, warehouse_uri: str
) -> None:
    """The watermark is the runs table, wherever the warehouse lives (file:// and a SeaweedFS bucket)."""
    uri = f"s3://{bucket}/models"
    refs = [publish(make_checkpoint(tmp_path / str(i), seed=i + 1), uri, f"org/m{i}", s3_settings) for i in range(3)]
    settings = s3_settings.model_copy(update={"warehouse": warehouse_uri})
    warehouse = Warehouse(warehouse_uri, get_settings())
    watchlist = parse_watchlist({"evaluate": {"suite": "core"}, "sources": [{"source": "s3", "uri": uri}]})
    first = discover(watchlist, settings=settings, warehouse=warehouse)
    assert sorted(map(str, first.new)) == sorted(map(str, refs))
    for ref in first.new[:2]:
        publish_run(
            warehouse,
            RunRecord(
                model_id=ref.model_id,
                revision=str(ref.revision),
                source="s3",
                suite="core",
                suite_version="1",
                logical_date=dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
            ),
            {},
        )
    second = discover(watchlist, settings=settings, warehouse=warehouse)
    third = discover(watchlist, settings=settings, warehouse=Warehouse(warehouse_uri, get_settings()))
    assert second.new == third.new == first.new[2:]
    assert second.already_evaluated == third.already_evaluated == 2
