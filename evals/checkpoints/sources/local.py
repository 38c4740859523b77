"""The ``local`` source: checkpoint directories under a root folder, pinned by a content hash."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from evals.checkpoints.content import MANIFEST_NAME
from evals.checkpoints.models import cached_sha256
from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.safety import RemoteFile, check_relative_path, is_code_file, is_data_file
from evals.checkpoints.sources import tree
from evals.checkpoints.sources.base import Source, SourceOptions
from evals.errors import CheckpointRejected, ConfigError

log = logging.getLogger(__name__)


class LocalOptions(SourceOptions):
    path: Path | None = None


class LocalSource(Source):
    """``<root>/<org>/<name>/`` (or ``.../<sha>/``) holding config.json and weights; revision = tree hash.

    A ``manifest.json`` (see evals.checkpoints.content.write_manifest) makes discovery cheap: its declared
    file hashes are trusted for discovery and re-checked byte by byte on materialization.
    """

    name = "local"
    options_model = LocalOptions

    @property
    def root(self) -> Path:
        if not isinstance(self.options, LocalOptions) or self.options.path is None:
            raise ConfigError("the local source needs 'path' (a directory of checkpoints)")
        return self.options.path.expanduser().resolve()

    def discover(self) -> list[CheckpointRef]:
        root = self.root
        if not root.is_dir():
            raise ConfigError(f"local checkpoint root {root} is not a directory")
        paths = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        refs = []
        for rel_dir in tree.checkpoint_dirs(paths):
            directory = root / rel_dir
            try:
                files = self._listing(directory, rel_dir)
                revision = self._revision(directory, rel_dir, files)
            except CheckpointRejected as exc:
                self.problems.append(str(exc))
                continue
            made = tree.make_ref("local", rel_dir, revision, directory.as_uri(), sum(f.size or 0 for f in files))
            if isinstance(made, str):
                self.problems.append(made)
            else:
                refs.append(made)
        return refs

    def _listing(self, directory: Path, label: str) -> list[RemoteFile]:
        manifest = directory / MANIFEST_NAME
        if manifest.is_file():
            return tree.parse_manifest(label, manifest.read_bytes())[1]
        files = []
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory).as_posix()
            if not path.is_file() or rel.startswith("."):
                continue
            # Only files that could be materialized are hashed: a 10 GB pickle next to them costs nothing.
            wanted = is_data_file(rel) or is_code_file(rel)
            files.append(RemoteFile(rel, path.stat().st_size, cached_sha256(path) if wanted else None))
        return files

    def _revision(self, directory: Path, rel_dir: str, files: list[RemoteFile]) -> str:
        manifest = directory / MANIFEST_NAME
        if manifest.is_file():
            revision = tree.parse_manifest(rel_dir, manifest.read_bytes())[0]
        else:
            revision = tree.listing_revision(CheckpointRef("local", tree.split_model_dir(rel_dir)[0]), files)
        named = tree.split_model_dir(rel_dir)[1]
        if named is not None and named != revision:
            raise CheckpointRejected(f"{directory}: directory is named {named} but its content hash is {revision}")
        return revision

    def _directory(self, ref: CheckpointRef) -> Path:
        if ref.uri and ref.uri.startswith("file://"):
            return Path(ref.uri[len("file://") :])
        base = self.root / ref.model_id
        if ref.revision and (base / ref.revision).is_dir():
            return base / ref.revision
        return base

    def resolve(self, ref: CheckpointRef) -> CheckpointRef:
        directory = self._directory(ref)
        if not directory.is_dir():
            raise ConfigError(f"{ref}: no checkpoint directory at {directory}")
        current = self._revision(directory, ref.model_id, self._listing(directory, str(ref)))
        if ref.revision is not None and ref.revision != current:
            raise CheckpointRejected(f"{ref}: the content at {directory} now hashes to {current}")
        return ref.with_revision(current, uri=directory.as_uri(), meta=ref.meta)

    def list_files(self, ref: CheckpointRef) -> list[RemoteFile]:
        directory = self._directory(ref)
        files = [f for f in self._listing(directory, str(ref)) if f.path != MANIFEST_NAME]
        for item in files:
            check_relative_path(ref, item.path)
            if not (directory / item.path).is_file():
                raise CheckpointRejected(f"{ref}: {item.path} is listed but missing in {directory}")
        return files

    def fetch(self, ref: CheckpointRef, files: list[RemoteFile], dest: Path) -> None:
        directory = self._directory(ref)
        for item in files:
            target = dest / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with open(directory / item.path, "rb") as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if item.sha256 is not None and digest.hexdigest() != item.sha256:
                raise CheckpointRejected(
                    f"{ref}: {item.path} changed: SHA-256 {digest.hexdigest()}, pinned {item.sha256}"
                )
        log.info("copied %d files of %s", len(files), ref)
