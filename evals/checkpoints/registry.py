"""The source registry: names map to ``"module:Class"`` strings, imported on first use (listing stays cheap)."""

from __future__ import annotations

import pkgutil
from typing import TYPE_CHECKING

from evals.errors import ConfigError

if TYPE_CHECKING:
    from evals.checkpoints.sources.base import Source

_SOURCES: dict[str, str | type[Source]] = {
    "hf": "evals.checkpoints.sources.hf:HfSource",
    "s3": "evals.checkpoints.sources.s3:S3Source",
    "local": "evals.checkpoints.sources.local:LocalSource",
    "package": "evals.checkpoints.sources.package:PackageSource",
}


def known_sources() -> list[str]:
    return sorted(_SOURCES)


def register_source(name: str, target: str | type[Source]) -> None:
    """Register a source class, or a ``"module:Class"`` string imported when first used."""
    from evals.checkpoints.ref import validate_source_name

    _SOURCES[validate_source_name(name)] = target


def get_source_class(name: str) -> type[Source]:
    try:
        target = _SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown checkpoint source {name!r}; known: {', '.join(known_sources())}") from None
    if isinstance(target, str):
        target = pkgutil.resolve_name(target)
        _SOURCES[name] = target
    return target
