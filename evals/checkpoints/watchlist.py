"""The watch-list YAML: which sources to poll and what "already evaluated" means; bad entries never stop others."""

from __future__ import annotations

import importlib.resources
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.registry import get_source_class
from evals.checkpoints.sources.base import SourceOptions
from evals.errors import ConfigError

log = logging.getLogger(__name__)


class EvaluateSpec(BaseModel):
    """The watermark key: a ref counts as evaluated once a run for it matches these (None matches any)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str | None = None
    suite_version: str | None = None
    scenario: str | None = None
    scenario_version: str | None = None
    max_attempts: int | None = Field(None, ge=1, description="Overrides EVALS_CHECKPOINT_MAX_ATTEMPTS.")


@dataclass(frozen=True)
class WatchEntry:
    """One valid watch-list entry: a source with its options, or one pinned ref."""

    index: int
    source: str
    options: SourceOptions | None = None
    ref: CheckpointRef | None = None

    @property
    def label(self) -> str:
        return f"sources[{self.index}] ({self.ref or self.source})"


@dataclass(frozen=True)
class EntryError:
    """A watch-list entry (or what it yielded) that could not be used, and why."""

    entry: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"entry": self.entry, "message": self.message}


@dataclass
class Watchlist:
    path: str
    evaluate: EvaluateSpec
    entries: list[WatchEntry] = field(default_factory=list)
    errors: list[EntryError] = field(default_factory=list)


def default_watchlist_path() -> Path:
    return Path(str(importlib.resources.files("evals").joinpath("config", "watchlist.yaml")))


def load_watchlist(path: Path | str | None = None) -> Watchlist:
    """Parse a watch-list file; a malformed file is a ConfigError, a malformed entry is recorded in ``errors``."""
    import yaml

    path = Path(path) if path is not None else default_watchlist_path()
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read watch-list {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"watch-list {path} is not valid YAML: {exc}") from exc
    return parse_watchlist(data, str(path))


def parse_watchlist(data: Any, origin: str = "<watch-list>") -> Watchlist:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"watch-list {origin}: expected a mapping with 'sources', got {type(data).__name__}")
    unknown = set(data) - {"evaluate", "sources"}
    if unknown:
        raise ConfigError(f"watch-list {origin}: unknown top-level keys {sorted(unknown)}; allowed: evaluate, sources")
    try:
        evaluate = EvaluateSpec.model_validate(data.get("evaluate") or {})
    except ValidationError as exc:
        raise ConfigError(f"watch-list {origin}: 'evaluate': {_short(exc)}") from exc
    sources = data.get("sources")
    sources = [] if sources is None else sources
    if not isinstance(sources, list):
        raise ConfigError(f"watch-list {origin}: 'sources' must be a list")
    watchlist = Watchlist(path=origin, evaluate=evaluate)
    for index, raw in enumerate(sources):
        try:
            watchlist.entries.append(_parse_entry(index, raw))
        except ConfigError as exc:
            watchlist.errors.append(EntryError(f"sources[{index}]", str(exc)))
    return watchlist


def _parse_entry(index: int, raw: Any) -> WatchEntry:
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping, got {raw!r}")
    if "ref" in raw:
        if set(raw) != {"ref"}:
            raise ConfigError(f"a 'ref' entry takes no other keys, got {sorted(set(raw) - {'ref'})}")
        ref = CheckpointRef.parse(raw["ref"])
        get_source_class(ref.source)
        return WatchEntry(index, ref.source, ref=ref)
    options = dict(raw)
    name = options.pop("source", None)
    if not isinstance(name, str):
        raise ConfigError("missing 'source' (or 'ref')")
    cls = get_source_class(name)
    try:
        return WatchEntry(index, name, options=cls.options_model.model_validate(options))
    except ValidationError as exc:
        raise ConfigError(f"source {name!r}: {_short(exc)}") from exc


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
