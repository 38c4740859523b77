"""The lazy registry: names resolve to "module:attr" targets on first lookup, unknown names list the known ones."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.errors import ConfigError
from evals.registry import LazyRegistry

MODULE = "evals_lazy_registry_probe"


@pytest.fixture
def probe_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / f"{MODULE}.py").write_text("class Thing:\n    label = 'found'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(MODULE, None)
    yield MODULE
    sys.modules.pop(MODULE, None)


def test_the_target_is_imported_on_first_lookup_only(probe_module: str) -> None:
    things: LazyRegistry[type] = LazyRegistry("thing", {"probe": f"{probe_module}:Thing"})
    assert things.names() == ["probe"] and "probe" in things and "other" not in things
    assert probe_module not in sys.modules
    first = things["probe"]
    assert probe_module in sys.modules and first.__name__ == "Thing" and getattr(first, "label", None) == "found"
    assert things["probe"] is first


def test_an_unknown_name_lists_the_known_ones() -> None:
    things: LazyRegistry[object] = LazyRegistry("widget", {"b": "json:dumps", "a": "json:loads"})
    with pytest.raises(ConfigError, match=r"unknown widget 'c'; known: a, b$"):
        things["c"]
    with pytest.raises(ConfigError, match=r"unknown widget 'json:dumps'; known: a, b$"):
        things["json:dumps"]  # an import string is a name like any other unless any_import is on


def test_a_target_that_cannot_be_imported_is_a_config_error() -> None:
    things: LazyRegistry[object] = LazyRegistry("widget", {"gone": "evals_no_such_module:Thing", "typo": "json:nope"})
    with pytest.raises(ConfigError, match=r"widget 'gone' \(evals_no_such_module:Thing\) cannot be imported"):
        things["gone"]
    with pytest.raises(ConfigError, match=r"widget 'typo' \(json:nope\) cannot be imported: AttributeError"):
        things["typo"]


def test_register_strings_and_objects(probe_module: str) -> None:
    things: LazyRegistry[object] = LazyRegistry("thing")
    things.register("probe", f"{probe_module}:Thing")
    things.register("direct", len)
    assert things.names() == ["direct", "probe"] and things["direct"] is len
    assert probe_module not in sys.modules
    assert getattr(things["probe"], "__name__", None) == "Thing"
    copy = things.copy()
    copy.register("extra", print)
    assert "extra" in copy and "extra" not in things
    things.register("direct", "json:dumps")  # a name registered again is replaced
    assert things["direct"] is json.dumps


def test_any_import_accepts_module_attr_names_without_registering_them() -> None:
    things: LazyRegistry[object] = LazyRegistry("plugin", {"a": "json:loads"}, any_import=True)
    assert things["json:dumps"] is json.dumps and "json:dumps" not in things
    with pytest.raises(ConfigError, match=r"unknown plugin 'nope'; known: a, or any module:attr"):
        things["nope"]
