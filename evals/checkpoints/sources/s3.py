"""The ``s3`` source: checkpoints under ``s3://bucket/prefix/<model_id>/<revision>/``, pinned by content hash."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import field_validator

from evals.checkpoints.content import MANIFEST_NAME
from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.safety import RemoteFile, check_relative_path, is_data_file
from evals.checkpoints.sources import tree
from evals.checkpoints.sources.base import Source, SourceOptions
from evals.errors import CheckpointRejected, ConfigError

if TYPE_CHECKING:
    from evals.settings import Settings

log = logging.getLogger(__name__)


class S3Options(SourceOptions):
    uri: str | None = None

    @field_validator("uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("s3://"):
            raise ValueError(f"must start with s3://, got {value!r}")
        return value


class S3Source(Source):
    """Each checkpoint lives in ``<model_id>/<revision>/``; revision = the tree hash of its data files, or the
    ``revision`` a ``manifest.json`` declares (its per-file SHA-256 are then checked on download).

    Credentials and endpoint come from the warehouse settings (EVALS_S3_ENDPOINT, EVALS_S3_CONN_ID, AWS chain).
    """

    name = "s3"
    options_model = S3Options

    def _fs(self) -> Any:
        from evals.warehouse.storage import make_filesystem, parse_uri

        return make_filesystem(parse_uri("s3://bucket"), self.settings)

    def _root(self) -> str:
        if not isinstance(self.options, S3Options) or self.options.uri is None:
            raise ConfigError("the s3 source needs 'uri' (s3://bucket/prefix)")
        return self.options.uri[len("s3://") :].strip("/")

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        from evals.warehouse.storage import guarded

        return guarded(what, lambda: fn(*args))

    def _list(self, fs: Any, base: str) -> dict[str, int]:
        from pyarrow import fs as pafs

        try:
            infos = self._call(f"list {base}", fs.get_file_info, pafs.FileSelector(base, recursive=True))
        except FileNotFoundError:
            return {}
        return {i.path[len(base) + 1 :]: int(i.size) for i in infos if i.type == pafs.FileType.File}

    def discover(self) -> list[CheckpointRef]:
        fs, root = self._fs(), self._root()
        files = self._list(fs, root)
        refs = []
        for rel_dir in tree.checkpoint_dirs(files):
            named = tree.split_model_dir(rel_dir)[1]
            uri = f"s3://{root}/{rel_dir}/"
            if named is None:
                self.problems.append(f"{uri}: not under <model_id>/<revision>/ (revision: 40 or 64 hex)")
                continue
            if f"{rel_dir}/{MANIFEST_NAME}" in files:
                try:
                    revision, _ = tree.parse_manifest(uri, self._read(fs, f"{root}/{rel_dir}/{MANIFEST_NAME}"))
                except CheckpointRejected as exc:
                    self.problems.append(str(exc))
                    continue
                if revision != named:
                    self.problems.append(f"{uri}: manifest declares revision {revision}")
                    continue
            size = sum(s for p, s in files.items() if p.startswith(rel_dir + "/") and is_data_file(p))
            made = tree.make_ref("s3", rel_dir, named, uri, size)
            if isinstance(made, str):
                self.problems.append(made)
            else:
                refs.append(made)
        return refs

    def _read(self, fs: Any, path: str) -> bytes:
        def read() -> bytes:
            with fs.open_input_stream(path) as handle:
                return bytes(handle.read())

        return bytes(self._call(f"read s3://{path}", read))

    def _prefix(self, ref: CheckpointRef) -> str:
        if ref.uri and ref.uri.startswith("s3://"):
            return ref.uri[len("s3://") :].strip("/")
        if ref.revision is None:
            raise CheckpointRejected(f"{ref}: an s3 checkpoint needs its revision (the directory name)")
        return f"{self._root()}/{ref.model_id}/{ref.revision}"

    def resolve(self, ref: CheckpointRef) -> CheckpointRef:
        prefix = self._prefix(ref)
        if ref.revision is None or not prefix.endswith("/" + ref.revision):
            raise CheckpointRejected(f"{ref}: s3 checkpoints are pinned by their directory name, got {prefix}")
        return ref.with_revision(ref.revision, uri=f"s3://{prefix}/", meta=ref.meta)

    def list_files(self, ref: CheckpointRef) -> list[RemoteFile]:
        fs, prefix = self._fs(), self._prefix(ref)
        sizes = self._list(fs, prefix)
        if not sizes:
            raise ConfigError(f"{ref}: nothing at s3://{prefix}/")
        if MANIFEST_NAME not in sizes:
            return [RemoteFile(path, size) for path, size in sorted(sizes.items())]
        revision, files = tree.parse_manifest(str(ref), self._read(fs, f"{prefix}/{MANIFEST_NAME}"))
        if revision != ref.revision:
            raise CheckpointRejected(f"{ref}: manifest declares revision {revision}, pinned {ref.revision}")
        for item in files:
            if sizes.get(item.path) != item.size:
                raise CheckpointRejected(f"{ref}: {item.path} in the manifest does not match the stored object")
        return files

    def fetch(self, ref: CheckpointRef, files: list[RemoteFile], dest: Path) -> None:
        fs, prefix = self._fs(), self._prefix(ref)
        hashes: dict[str, str] = {}
        for item in files:
            check_relative_path(ref, item.path)
            target = dest / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            hashes[item.path] = self._download(fs, f"{prefix}/{item.path}", target)
            if item.sha256 is not None and hashes[item.path] != item.sha256:
                raise CheckpointRejected(f"{ref}: {item.path} has SHA-256 {hashes[item.path]}, pinned {item.sha256}")
        if all(item.sha256 is None for item in files):
            # No manifest: the directory name is the content hash, so recompute it from what arrived.
            fetched = tree.listing_revision(ref, [RemoteFile(p, None, h) for p, h in hashes.items()])
            if fetched != ref.revision:
                raise CheckpointRejected(f"{ref}: fetched content hashes to {fetched}, not the pinned revision")

    def _download(self, fs: Any, path: str, target: Path) -> str:
        def copy() -> str:
            digest = hashlib.sha256()
            with fs.open_input_stream(path) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            return digest.hexdigest()

        return str(self._call(f"download s3://{path}", copy))


def publish(directory: Path, uri: str, model_id: str, settings: Settings, *, manifest: bool = True) -> CheckpointRef:
    """Upload a checkpoint's data files to ``<uri>/<model_id>/<revision>/`` (the layout this source reads).

    With ``manifest`` a ``manifest.json`` (per-file SHA-256) is written too, so discovery reads one small object.
    """
    from evals.checkpoints.content import build_manifest

    data = build_manifest(directory)
    revision = str(data["revision"])
    source = S3Source(settings, {"uri": uri})
    fs, prefix = source._fs(), f"{source._root()}/{model_id}/{revision}"

    def put(path: str, payload: bytes) -> None:
        with fs.open_output_stream(f"{prefix}/{path}") as out:
            out.write(payload)

    for path in data["files"]:
        source._call(f"upload s3://{prefix}/{path}", put, path, (directory / path).read_bytes())
    if manifest:
        source._call("upload manifest", put, MANIFEST_NAME, json.dumps(data, indent=2, sort_keys=True).encode())
    return CheckpointRef("s3", model_id, revision, uri=f"s3://{prefix}/")
