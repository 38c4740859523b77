"""CheckpointRef: which checkpoint (source, model id, pinned revision) and its string form ``source:id@sha``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from evals.errors import ConfigError

MAX_MODEL_ID_LENGTH = 200
_SOURCE_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# Each path segment starts with a letter or digit, which also rules out "", "." and "..".
_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# A git commit (40 hex, the Hub) or a content hash (64 hex: SHA-256, for s3/local/package checkpoints).
_REVISION_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class InvalidRef(ConfigError):
    """A checkpoint reference (string or fields) is malformed."""


@dataclasses.dataclass(frozen=True)
class CheckpointMeta:
    """What is known about a checkpoint without loading it; every field may be unknown."""

    params: int | None = None
    dtype: str | None = None
    size_bytes: int | None = None
    license: str | None = None
    created_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        return out


@dataclasses.dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint: ``source`` (registered source name), ``model_id``, ``revision`` (full SHA once resolved).

    Equality and hashing use (source, model_id, revision) only: ``uri`` and ``meta`` describe, not identify.
    """

    source: str
    model_id: str
    revision: str | None = None
    uri: str | None = dataclasses.field(default=None, compare=False)
    meta: CheckpointMeta = dataclasses.field(default_factory=CheckpointMeta, compare=False)

    def __post_init__(self) -> None:
        validate_source_name(self.source)
        validate_model_id(self.model_id)
        if self.revision is not None:
            validate_revision(self.revision)

    @classmethod
    def parse(cls, text: str) -> CheckpointRef:
        """Parse ``source:model_id`` or ``source:model_id@revision`` (revision: 40 or 64 lowercase hex)."""
        if not isinstance(text, str) or not text:
            raise InvalidRef("empty checkpoint reference; expected 'source:model_id@revision'")
        if text != text.strip() or any(ch.isspace() for ch in text):
            raise InvalidRef(f"checkpoint reference {text!r} contains whitespace")
        source, sep, rest = text.partition(":")
        if not sep:
            raise InvalidRef(f"checkpoint reference {text!r} has no source; expected 'source:model_id@revision'")
        model_id, at, revision = rest.partition("@")
        if at and not revision:
            raise InvalidRef(f"checkpoint reference {text!r} has an empty revision after '@'")
        return cls(source=source, model_id=model_id, revision=revision or None)

    def __str__(self) -> str:
        base = f"{self.source}:{self.model_id}"
        return f"{base}@{self.revision}" if self.revision else base

    @property
    def pinned(self) -> bool:
        return self.revision is not None

    def with_revision(self, revision: str, **changes: Any) -> CheckpointRef:
        return dataclasses.replace(self, revision=revision, **changes)

    def cache_key(self) -> str:
        """A filesystem-safe, collision-free directory name for this pinned ref."""
        if self.revision is None:
            raise InvalidRef(f"{self} is not pinned to a revision")
        # '~' is not allowed in a model id, so the mapping is one-to-one (and never nests one entry in another).
        return f"{self.source}/{self.model_id.replace('/', '~')}/{self.revision}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointRef:
        """Inverse of ``to_dict`` (what DAG tasks pass each other through XCom)."""
        created = data.get("created_at")
        meta = CheckpointMeta(
            params=data.get("params"),
            dtype=data.get("dtype"),
            size_bytes=data.get("size_bytes"),
            license=data.get("license"),
            created_at=dt.datetime.fromisoformat(created) if created else None,
        )
        return cls(data["source"], data["model_id"], data.get("revision"), uri=data.get("uri"), meta=meta)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (strict JSON: fit for XCom)."""
        return {
            "ref": str(self),
            "source": self.source,
            "model_id": self.model_id,
            "revision": self.revision,
            "uri": self.uri,
            **self.meta.to_dict(),
        }


def validate_source_name(name: str) -> str:
    if not isinstance(name, str) or not _SOURCE_RE.fullmatch(name):
        raise InvalidRef(f"invalid source name {name!r}: lowercase letters, digits, '-' or '_', starting a-z")
    return name


def validate_model_id(model_id: str) -> str:
    if not isinstance(model_id, str) or not model_id:
        raise InvalidRef("empty model id")
    if len(model_id) > MAX_MODEL_ID_LENGTH:
        raise InvalidRef(f"model id is {len(model_id)} characters long, more than {MAX_MODEL_ID_LENGTH}")
    if any(ch.isspace() for ch in model_id):
        raise InvalidRef(f"model id {model_id!r} contains whitespace")
    if model_id.startswith("/"):
        raise InvalidRef(f"model id {model_id!r} is an absolute path; use 'org/name'")
    for segment in model_id.split("/"):
        if segment == "..":
            raise InvalidRef(f"model id {model_id!r} contains '..'")
        if not _SEGMENT_RE.fullmatch(segment):
            raise InvalidRef(
                f"model id {model_id!r} has an invalid part {segment!r}: use letters, digits, '.', '_', '-' "
                "separated by single '/', each part starting with a letter or digit"
            )
    return model_id


def validate_revision(revision: str) -> str:
    if not isinstance(revision, str) or not _REVISION_RE.fullmatch(revision):
        raise InvalidRef(
            f"invalid revision {revision!r}: expected a full commit SHA (40 lowercase hex) or a SHA-256 content "
            "hash (64 lowercase hex); branch names and short SHAs must be resolved first"
        )
    return revision


def is_revision(text: str) -> bool:
    return bool(_REVISION_RE.fullmatch(text))
