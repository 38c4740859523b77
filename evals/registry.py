"""Lazy registries by name: each name maps to a ``"module:attr"`` string, imported on first lookup, or to the object.

Listing or checking names never imports anything, so a registry of backends costs nothing until one is used
(lm-eval and GuideLLM do the same). Used by accuracy backends, checkpoint sources and notifiers.
"""

from __future__ import annotations

import pkgutil
from typing import Any, Generic, TypeVar

from evals.errors import ConfigError

T = TypeVar("T")


def import_target(target: str, what: str) -> Any:
    """The object a ``"module:attr"`` string names; ConfigError (naming ``what``) when it cannot be imported."""
    try:
        return pkgutil.resolve_name(target)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{what} ({target}) cannot be imported: {type(exc).__name__}: {exc}") from exc


class LazyRegistry(Generic[T]):
    """Names of one kind of thing (``kind`` names it in errors) mapped to ``"module:attr"`` strings or objects.

    ``registry[name]`` imports the target on first use and keeps it; an unknown name is a ConfigError listing
    the known ones. With ``any_import`` a name that is itself a ``"module:attr"`` string (a plug-in of the
    deployment's own) is imported without being registered.
    """

    def __init__(self, kind: str, targets: dict[str, str | T] | None = None, *, any_import: bool = False) -> None:
        self.kind = kind
        self.any_import = any_import
        self._targets: dict[str, str | T] = dict(targets or {})

    def register(self, name: str, target: str | T) -> None:
        """Add or replace ``name``: a ``"module:attr"`` string (imported when first looked up) or the object."""
        self._targets[name] = target

    def names(self) -> list[str]:
        return sorted(self._targets)

    def copy(self) -> LazyRegistry[T]:
        return LazyRegistry(self.kind, self._targets, any_import=self.any_import)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __getitem__(self, name: str) -> T:
        if name not in self._targets:
            if self.any_import and ":" in name:
                found: T = import_target(name, self.kind)
                return found
            known = ", ".join([*self.names(), *(["or any module:attr"] if self.any_import else [])])
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}")
        target = self._targets[name]
        if isinstance(target, str):
            target = import_target(target, f"{self.kind} {name!r}")
            self._targets[name] = target
        return target
