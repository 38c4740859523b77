"""The hf source against a local HTTP fake of the Hub: discovery, pinning, safe snapshot downloads, retries."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from integration.checkpoints.fake_hub import FakeHub
from pydantic import SecretStr

from evals.checkpoints.discover import discover
from evals.checkpoints.materialize import materialize
from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.sources.hf import HfSource, HubUnavailable
from evals.checkpoints.testing import make_checkpoint
from evals.checkpoints.watchlist import parse_watchlist
from evals.errors import CheckpointRejected, ConfigError, RateLimited, TransientError
from evals.settings import Settings

pytestmark = pytest.mark.integration


def _files(tmp_path: Path, name: str, **kwargs: object) -> dict[str, bytes]:
    directory = make_checkpoint(tmp_path / "src" / name, **kwargs)  # type: ignore[arg-type]
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_discovers_new_models_by_author_and_tag(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    a = hub.commit("acme/small-1", _files(tmp_path, "a", seed=1), tags=["safetensors", "text-generation"])
    b = hub.commit("acme/small-2", _files(tmp_path, "b", seed=2), tags=["safetensors", "text-generation"])
    hub.commit("acme/vision", _files(tmp_path, "c", seed=3), tags=["image-classification"])
    hub.commit("other/small-3", _files(tmp_path, "d", seed=4), tags=["safetensors", "text-generation"])
    source = HfSource(hf_settings, {"author": "acme", "filter": ["text-generation"]})
    refs = source.discover()
    assert sorted(map(str, refs)) == [f"hf:acme/small-1@{a}", f"hf:acme/small-2@{b}"]
    assert refs[0].meta.license == "apache-2.0" and refs[0].meta.params == 4 and refs[0].meta.dtype == "F32"
    assert refs[0].meta.created_at is not None
    assert hub.count(r"^/api/models$") == 1
    (found,) = HfSource(hf_settings, {"search": "small-3"}).discover()
    assert found.model_id == "other/small-3"


def test_tracks_new_commits_on_a_branch(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    first = hub.commit("acme/tracked", _files(tmp_path, "v1", seed=1))
    source = HfSource(hf_settings, {"model_id": "acme/tracked", "ref": "main"})
    assert [r.revision for r in source.discover()] == [first]
    second = hub.commit("acme/tracked", _files(tmp_path, "v2", seed=2), title="v2")
    assert [r.revision for r in source.discover()] == [second]
    history = HfSource(hf_settings, {"model_id": "acme/tracked", "history": 5}).discover()
    assert [r.revision for r in history] == [second, first]
    dev = hub.commit("acme/tracked", _files(tmp_path, "v3", seed=3), ref="dev")
    assert [r.revision for r in HfSource(hf_settings, {"model_id": "acme/tracked", "ref": "dev"}).discover()] == [dev]


def test_discovery_through_the_watchlist_isolates_failures(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    sha = hub.commit("acme/ok", _files(tmp_path, "ok"))
    watchlist = parse_watchlist(
        {
            "sources": [
                {"source": "hf", "model_id": "acme/missing"},
                {"source": "hf", "model_id": "acme/ok"},
                {"ref": "hf:acme/ok@" + "f" * 40},
            ]
        }
    )
    result = discover(watchlist, settings=hf_settings)
    assert [str(r) for r in result.new] == [f"hf:acme/ok@{sha}"]
    messages = [e.message for e in result.errors]
    assert any("not found on the Hub" in m for m in messages) and len(messages) == 2
    again = discover(watchlist, settings=hf_settings)
    assert again.new == result.new


def test_materialize_downloads_only_allowed_files_at_the_pinned_commit(
    hub: FakeHub, hf_settings: Settings, tmp_path: Path, evil_pickle: tuple[bytes, Path]
) -> None:
    payload, marker = evil_pickle
    files = _files(
        tmp_path, "m", extra_files={"pytorch_model.bin": payload, "README.md": b"# card", "modeling_x.py": b"import os"}
    )
    sha = hub.commit("acme/mixed", files)
    hub.commit("acme/mixed", _files(tmp_path, "m2", seed=9), title="newer")  # main moves on; the pin must not
    path = materialize(f"hf:acme/mixed@{sha}", settings=hf_settings)
    assert path == hf_settings.cache_dir / "checkpoints" / "hf" / "acme~mixed" / sha
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert (path / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert not (path / ".cache").exists() and not marker.exists()
    assert hub.count(r"/resolve/.*/pytorch_model\.bin") == 0 and hub.count(r"/resolve/.*/modeling_x\.py") == 0
    # Cached by SHA: a second call makes no request at all.
    before = len(hub.requests)
    assert materialize(f"hf:acme/mixed@{sha}", settings=hf_settings) == path
    assert len(hub.requests) == before


def test_unpinned_ref_is_resolved_to_the_current_commit(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    sha = hub.commit("acme/latest", _files(tmp_path, "l"))
    assert materialize("hf:acme/latest", settings=hf_settings).name == sha


def test_pickle_only_repo_is_refused_and_never_unpickled(
    hub: FakeHub, hf_settings: Settings, tmp_path: Path, evil_pickle: tuple[bytes, Path]
) -> None:
    payload, marker = evil_pickle
    sha = hub.commit(
        "acme/pickled", _files(tmp_path, "p", safetensors=False, extra_files={"pytorch_model.bin": payload})
    )
    with pytest.raises(CheckpointRejected, match=r"only pickle weights \(pytorch_model.bin\)"):
        materialize(f"hf:acme/pickled@{sha}", settings=hf_settings)
    assert not marker.exists()
    assert hub.count(r"/resolve/") == 0
    assert not (hf_settings.cache_dir / "checkpoints" / "hf" / "acme~pickled").exists()


def test_auto_map_repo_is_refused_unless_allowlisted(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    config = {"model_type": "custom", "auto_map": {"AutoModelForCausalLM": "modeling_custom.Custom"}}
    sha = hub.commit(
        "acme/custom", _files(tmp_path, "c", config=config, extra_files={"modeling_custom.py": b"print('hi')"})
    )
    with pytest.raises(CheckpointRejected, match=r"requires custom code \(config\.json: auto_map\)"):
        materialize(f"hf:acme/custom@{sha}", settings=hf_settings)
    assert hub.count(r"/resolve/") == 0  # refused from the model info, before any download
    assert not (hf_settings.cache_dir / "checkpoints" / "hf" / "acme~custom" / sha).exists()
    allowed = hf_settings.model_copy(update={"trust_remote_code_allowlist": [f"acme/custom@{sha}"]})
    path = materialize(f"hf:acme/custom@{sha}", settings=allowed)
    assert (path / "modeling_custom.py").read_bytes() == b"print('hi')"


def test_files_served_from_another_commit_are_refused(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    sha = hub.commit("acme/drift", _files(tmp_path, "d"))
    hub.files_claim_commit = "e" * 40
    with pytest.raises(CheckpointRejected, match=f"fetched from commit {'e' * 40}"):
        materialize(f"hf:acme/drift@{sha}", settings=hf_settings)
    assert not (hf_settings.cache_dir / "checkpoints" / "hf" / "acme~drift" / sha).exists()


def test_model_info_for_another_commit_is_refused(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    sha = hub.commit("acme/liar", _files(tmp_path, "l"))
    hub.info_claims_commit = "d" * 40
    with pytest.raises(CheckpointRejected, match=f"resolved the pinned revision to {'d' * 40}"):
        materialize(f"hf:acme/liar@{sha}", settings=hf_settings)
    assert hub.count(r"/resolve/") == 0


def test_token_comes_from_settings_and_is_sent_to_the_hub(
    hub: FakeHub, hf_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sha = hub.commit("acme/private", _files(tmp_path, "t"))
    settings = hf_settings.model_copy(update={"hf_token": SecretStr("hf_secret_token_123")})
    materialize(f"hf:acme/private@{sha}", settings=settings)
    assert hub.authorizations and set(hub.authorizations) == {"Bearer hf_secret_token_123"}
    assert "hf_secret_token_123" not in caplog.text and "hf_secret_token_123" not in repr(settings)


def test_size_limit_is_checked_before_any_download(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    sha = hub.commit("acme/big", _files(tmp_path, "b"))
    small = hf_settings.model_copy(update={"checkpoint_max_bytes": 50})
    with pytest.raises(CheckpointRejected, match="over the limit of 50"):
        materialize(f"hf:acme/big@{sha}", settings=small)
    assert hub.count(r"/resolve/") == 0


def test_unknown_pinned_revision_is_a_clear_error(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    hub.commit("acme/r", _files(tmp_path, "r"))
    with pytest.raises(ConfigError, match="not found on the Hub"):
        materialize("hf:acme/r@" + "0" * 40, settings=hf_settings)


def test_429_with_retry_after_is_honoured_then_succeeds(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    sha = hub.commit("acme/busy", _files(tmp_path, "busy"))
    hub.fail(r"^/api/models/acme/busy", [429, 429], headers={"Retry-After": "0.5"})
    started = time.monotonic()
    refs = HfSource(hf_settings, {"model_id": "acme/busy"}).discover()
    assert [r.revision for r in refs] == [sha]
    assert time.monotonic() - started >= 1.0  # waited Retry-After twice
    assert hub.count(r"^/api/models/acme/busy") == 3


def test_retry_after_is_capped(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    hub.commit("acme/slow", _files(tmp_path, "slow"))
    hub.fail(r"^/api/models/acme/slow", [429], headers={"Retry-After": "3600"})
    started = time.monotonic()
    HfSource(hf_settings, {"model_id": "acme/slow"}).discover()
    assert time.monotonic() - started < 5


def test_429_forever_is_rate_limited_after_bounded_attempts(hub: FakeHub, hf_settings: Settings) -> None:
    hub.fail(r"^/api/models/acme/hot", [429], headers={"Retry-After": "0"}, forever=True)
    with pytest.raises(RateLimited, match="after 3 attempts") as info:
        HfSource(hf_settings, {"model_id": "acme/hot"}).discover()
    assert isinstance(info.value, TransientError)
    assert hub.count(r"^/api/models/acme/hot") == 3


def test_download_errors_are_retried(hub: FakeHub, hf_settings: Settings, tmp_path: Path) -> None:
    files = _files(tmp_path, "flaky")
    sha = hub.commit("acme/flaky", files)
    hub.fail(r"/api/models/acme/flaky/tree/", [503])
    hub.fail(r"/resolve/.*/model\.safetensors", [502])
    path = materialize(f"hf:acme/flaky@{sha}", settings=hf_settings)
    assert (path / "model.safetensors").read_bytes() == files["model.safetensors"]


def test_offline_mode_is_a_clear_configuration_error(
    hub: FakeHub, hf_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE is set"):
        HfSource(hf_settings, {"model_id": "acme/x"}).discover()
    assert hub.requests == []


def test_500_forever_is_transient_after_bounded_attempts(hub: FakeHub, hf_settings: Settings) -> None:
    hub.fail(r"^/api/models/acme/down", [500], forever=True)
    started = time.monotonic()
    with pytest.raises(HubUnavailable, match="Hub error 500 after 3 attempts") as info:
        HfSource(hf_settings, {"model_id": "acme/down"}).discover()
    assert info.value.retryable and time.monotonic() - started < 10
    assert hub.count(r"^/api/models/acme/down") == 3


def test_an_unreachable_hub_is_transient(hf_settings: Settings) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = hf_settings.model_copy(update={"hf_endpoint": f"http://127.0.0.1:{port}"})
    with pytest.raises(HubUnavailable, match="unreachable after 3 attempts"):
        HfSource(settings, {"model_id": "acme/x"}).discover()


def test_hub_shaped_response_parses() -> None:
    """A model-info response in huggingface.co's shape (hand-written from the API's documented fields)."""
    from huggingface_hub.hf_api import ModelInfo

    from evals.checkpoints.sources.hf import _meta

    recorded = json.loads((Path(__file__).parent / "hub_responses" / "model_info_smollm2.json").read_text())
    info = ModelInfo(**recorded)
    meta = _meta(info)
    assert info.sha and len(info.sha) == 40
    assert meta.params == 134515008 and meta.license == "apache-2.0" and meta.dtype == "BF16"
    ref = CheckpointRef("hf", info.id, info.sha)
    assert str(ref).startswith("hf:HuggingFaceTB/SmolLM2-135M-Instruct@")
