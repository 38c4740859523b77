"""Watch-list parsing: the shipped example, malformed files, malformed entries reported one by one."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.checkpoints.sources.hf import HfOptions
from evals.checkpoints.watchlist import default_watchlist_path, load_watchlist, parse_watchlist
from evals.errors import ConfigError

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_shipped_watchlist_is_valid() -> None:
    watchlist = load_watchlist()
    assert default_watchlist_path().name == "watchlist.yaml"
    assert watchlist.errors == []
    assert [e.source for e in watchlist.entries] == ["package"]


def test_every_malformed_entry_is_reported_and_the_rest_kept() -> None:
    watchlist = parse_watchlist(
        {
            "evaluate": {"suite": "core", "max_attempts": 2},
            "sources": [
                {"source": "hf", "author": "HuggingFaceTB", "filter": ["safetensors"]},
                {"source": "gcs", "uri": "gs://x"},
                {"source": "hf", "model_id": "org/m", "author": "org"},
                {"source": "hf"},
                {"source": "hf", "model_id": "../etc"},
                {"source": "local", "path": "/models", "colour": "red"},
                {"ref": "hf:org/name@main"},
                {"ref": f"hf:org/name@{SHA}", "extra": 1},
                "just a string",
                {"author": "x"},
                {"ref": f"hf:org/name@{SHA}"},
                {"source": "s3", "uri": "http://not-s3"},
            ],
        }
    )
    assert [e.index for e in watchlist.entries] == [0, 10]
    assert isinstance(watchlist.entries[0].options, HfOptions)
    assert watchlist.entries[0].options.filter == ["safetensors"]
    assert watchlist.evaluate.suite == "core" and watchlist.evaluate.max_attempts == 2
    messages = {error.entry: error.message for error in watchlist.errors}
    assert set(messages) == {f"sources[{i}]" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11)}
    assert "unknown checkpoint source 'gcs'; known: endpoint, hf, local, package, s3" in messages["sources[1]"]
    assert "either model_id" in messages["sources[2]"]
    assert "give model_id, or at least one of" in messages["sources[3]"]
    assert "'..'" in messages["sources[4]"]
    assert "colour" in messages["sources[5]"]
    assert "invalid revision 'main'" in messages["sources[6]"]
    assert "takes no other keys" in messages["sources[7]"]
    assert "expected a mapping" in messages["sources[8]"]
    assert "missing 'source'" in messages["sources[9]"]
    assert "must start with s3://" in messages["sources[11]"]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("- a\n- b\n", "expected a mapping"),
        ("sources: {a: 1}\n", "'sources' must be a list"),
        ("sourcez: []\n", "unknown top-level keys"),
        ("evaluate: {suite: 1, colour: x}\n", "'evaluate'"),
        ("sources: [\n", "not valid YAML"),
    ],
)
def test_malformed_files_are_config_errors(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=complaint):
        load_watchlist(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read watch-list .*nope\.yaml"):
        load_watchlist(tmp_path / "nope.yaml")
