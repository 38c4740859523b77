"""The source registry: names map to ``"module:Class"`` strings, imported on first use (listing stays cheap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evals.registry import LazyRegistry

if TYPE_CHECKING:
    from evals.checkpoints.sources.base import Source

SOURCES: LazyRegistry[type[Source]] = LazyRegistry(
    "checkpoint source",
    {
        "hf": "evals.checkpoints.sources.hf:HfSource",
        "s3": "evals.checkpoints.sources.s3:S3Source",
        "local": "evals.checkpoints.sources.local:LocalSource",
        "package": "evals.checkpoints.sources.package:PackageSource",
        "endpoint": "evals.checkpoints.sources.endpoint:EndpointSource",
    },
)


def known_sources() -> list[str]:
    return SOURCES.names()


def register_source(name: str, target: str | type[Source]) -> None:
    """Register a source class, or a ``"module:Class"`` string imported when first used."""
    from evals.checkpoints.ref import validate_source_name

    SOURCES.register(validate_source_name(name), target)


def get_source_class(name: str) -> type[Source]:
    return SOURCES[name]
