"""The Source interface every checkpoint source implements, and its watch-list options model."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.safety import RemoteFile
from evals.errors import ConfigError

if TYPE_CHECKING:
    from evals.settings import Settings


class SourceOptions(BaseModel):
    """Options of one watch-list entry; each source extends it. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(abc.ABC):
    """Finds checkpoints (``discover``), pins them (``resolve``), lists and fetches their files.

    ``materialize`` drives the safety checks; a source only reports what it holds and copies bytes.
    """

    name: ClassVar[str]
    options_model: ClassVar[type[SourceOptions]] = SourceOptions
    # False for a source whose "checkpoint" is a declaration, not weights (a hosted endpoint): materialize then
    # returns its prepared directory without the weight checks (there are no files to select or inspect).
    has_weights: ClassVar[bool] = True

    def __init__(self, settings: Settings, options: SourceOptions | dict[str, Any] | None = None) -> None:
        """``options`` come from a watch-list entry; None builds a source that can only materialize given refs."""
        self.settings = settings
        if isinstance(options, dict):
            try:
                options = self.options_model.model_validate(options)
            except ValidationError as exc:
                raise ConfigError(f"{self.name} source options: {exc.errors()[0]['msg']}") from exc
        self.options: SourceOptions | None = options
        # Things discover() skipped (a malformed directory, a bad id): reported, never fatal for other refs.
        self.problems: list[str] = []

    @abc.abstractmethod
    def discover(self) -> list[CheckpointRef]:
        """Every checkpoint this entry currently points at, each pinned to a revision."""

    def resolve(self, ref: CheckpointRef) -> CheckpointRef:
        """Pin ``ref`` to a revision (and fill in its uri); the default accepts only pinned refs."""
        if ref.revision is None:
            from evals.checkpoints.ref import InvalidRef

            raise InvalidRef(f"{ref}: the {self.name} source needs an explicit revision (@sha)")
        return ref

    @abc.abstractmethod
    def list_files(self, ref: CheckpointRef) -> list[RemoteFile]:
        """The files of the pinned ``ref`` with sizes (and SHA-256 when the source knows them)."""

    @abc.abstractmethod
    def fetch(self, ref: CheckpointRef, files: list[RemoteFile], dest: Path) -> None:
        """Copy exactly ``files`` of ``ref`` into ``dest``, raising CheckpointRejected on any revision mismatch."""

    def prepared_dir(self, ref: CheckpointRef) -> Path | None:
        """A ready local directory this source built itself (no download needed), or None."""
        return None
