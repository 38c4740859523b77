"""Where the warehouse lives: URI parsing, pyarrow filesystems for file:// and s3://, error classification."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from evals.errors import ConfigError, StorageUnavailable, TerminalError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow import fs as pafs

    from evals.connections import AwsCredentials
    from evals.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Substrings of pyarrow/AWS SDK errors that mean "the store is (temporarily) unreachable or overloaded".
_TRANSIENT_MARKERS = (
    "NETWORK_CONNECTION",
    "SLOW_DOWN",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_FAILURE",
    "THROTTL",
    "HTTP response code: 5",
    "response code 5",
    "Connection refused",
    "timed out",
    "Timeout",
    "Couldn't connect",
    "curlCode: 7",
    "Connection reset",
)


@dataclass(frozen=True)
class Location:
    """A parsed warehouse root: scheme (file | s3) and the filesystem path of the root."""

    scheme: str
    root: str  # local absolute path, or "bucket/prefix" for s3

    @property
    def uri(self) -> str:
        return f"file://{self.root}" if self.scheme == "file" else f"s3://{self.root}"

    @property
    def bucket(self) -> str | None:
        return self.root.split("/", 1)[0] if self.scheme == "s3" else None


def parse_uri(uri: str) -> Location:
    """``file:///abs``, ``file://./rel`` (relative to the working directory) or ``s3://bucket/prefix``."""
    if uri.startswith("file://"):
        raw = uri[len("file://") :]
        if not raw:
            raise ConfigError(f"warehouse URI {uri!r} has no path")
        return Location("file", str(Path(raw).expanduser().resolve()))
    if uri.startswith("s3://"):
        parsed = urlparse(uri)
        if not parsed.netloc:
            raise ConfigError(f"warehouse URI {uri!r} has no bucket")
        root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return Location("s3", root)
    raise ConfigError(f"warehouse URI must start with file:// or s3://, got {uri!r}")


def fs_path(uri: str) -> str:
    """A file URI (``file:///abs``, ``s3://bucket/key``) as the path its pyarrow filesystem takes."""
    for scheme in ("file://", "s3://", "s3a://"):
        if uri.startswith(scheme):
            return uri[len(scheme) :]
    return uri


def make_filesystem(location: Location, settings: Settings) -> pafs.FileSystem:
    from pyarrow import fs as pafs

    if location.scheme == "file":
        return pafs.LocalFileSystem()
    options: dict[str, Any] = {
        "region": settings.s3_region,
        "connect_timeout": 5,
        "request_timeout": 60,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=4),
    }
    endpoint, creds = s3_access(settings)
    if creds is not None:
        options.update(access_key=creds.access_key, secret_key=creds.secret_key)
        if creds.session_token:
            options["session_token"] = creds.session_token
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        options["endpoint_override"] = parsed.netloc
        options["scheme"] = parsed.scheme or "http"
        # Path-style addressing: loopback and on-prem stores have no per-bucket DNS names.
        options["force_virtual_addressing"] = False
    return pafs.S3FileSystem(**options)


def s3_access(settings: Settings) -> tuple[str | None, AwsCredentials | None]:
    """The S3 endpoint and credentials the settings name: EVALS_S3_ACCESS_KEY_ID/SECRET (first), else the
    connection EVALS_S3_CONN_ID; (endpoint, None) leaves credentials to the AWS default chain."""
    from evals.connections import AwsCredentials, aws_credentials

    endpoint = settings.s3_endpoint
    creds = None
    if settings.s3_conn_id:
        creds = aws_credentials(settings.s3_conn_id)
        endpoint = endpoint or creds.endpoint_url
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        creds = AwsCredentials(
            settings.s3_access_key_id.get_secret_value(), settings.s3_secret_access_key.get_secret_value()
        )
    return endpoint, creds


def classify(exc: BaseException, what: str) -> Exception:
    """Turn a filesystem error into a TransientError (retry) or TerminalError (don't)."""
    text = str(exc)
    if isinstance(exc, FileNotFoundError):
        return exc  # callers decide what a missing file means
    if isinstance(exc, StorageUnavailable):
        return exc  # classified where it was raised (e.g. the catalog unreachable)
    if any(marker.lower() in text.lower() for marker in _TRANSIENT_MARKERS):
        return StorageUnavailable(f"{what}: storage unavailable: {text.splitlines()[0] if text else exc!r}")
    if "NoSuchBucket" in text or "NO_SUCH_BUCKET" in text or "bucket does not exist" in text.lower():
        return ConfigError(f"{what}: bucket does not exist: {text.splitlines()[0]}")
    if "ACCESS_DENIED" in text or "AccessDenied" in text or "InvalidAccessKeyId" in text:
        return ConfigError(f"{what}: access denied (check the S3 credentials/connection)")
    return TerminalError(f"{what}: {text.splitlines()[0] if text else exc!r}")


def guarded(what: str, fn: Callable[[], T]) -> T:
    """Run a filesystem call, re-raising OS-level failures with their retry semantics."""
    try:
        return fn()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise classify(exc, what) from exc


class Storage:
    """Filesystem operations under one warehouse root, with atomic writes on local disk."""

    def __init__(self, location: Location, filesystem: pafs.FileSystem) -> None:
        self.location = location
        self.fs = filesystem

    def path(self, relative: str) -> str:
        return f"{self.location.root}/{relative}" if relative else self.location.root

    def write_parquet(self, relative: str, table: pa.Table, *, metadata: dict[str, str] | None = None) -> None:
        import pyarrow.parquet as pq

        if metadata:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})

        def write(path: str) -> None:
            pq.write_table(table, path, filesystem=self.fs, compression="zstd")

        self._atomic(relative, write)

    def write_bytes(self, relative: str, data: bytes) -> None:
        def write(path: str) -> None:
            with self.fs.open_output_stream(path) as out:
                out.write(data)

        self._atomic(relative, write)

    def write_json(self, relative: str, obj: Any) -> None:
        self.write_bytes(relative, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def read_bytes(self, relative: str) -> bytes:
        def read() -> bytes:
            with self.fs.open_input_stream(self.path(relative)) as src:
                return bytes(src.read())

        return guarded(f"read {self.location.uri}/{relative}", read)

    def read_json(self, relative: str) -> Any:
        return json.loads(self.read_bytes(relative))

    def exists(self, relative: str) -> bool:
        from pyarrow import fs as pafs

        info = guarded(f"stat {relative}", lambda: self.fs.get_file_info(self.path(relative)))
        return bool(info.type != pafs.FileType.NotFound)

    def delete(self, relative: str) -> bool:
        """Delete one file; False when it was already gone."""
        try:
            guarded(f"delete {relative}", lambda: self.fs.delete_file(self.path(relative)))
        except FileNotFoundError:
            return False
        return True

    def list_files(self, relative: str) -> list[pafs.FileInfo]:
        """Every file below ``relative`` (recursive), skipping hidden/temporary names; [] when absent."""
        from pyarrow import fs as pafs

        selector = pafs.FileSelector(self.path(relative), recursive=True, allow_not_found=True)
        infos = guarded(f"list {self.location.uri}/{relative}", lambda: self.fs.get_file_info(selector))
        return [info for info in infos if info.type == pafs.FileType.File and not info.base_name.startswith((".", "_"))]

    def _atomic(self, relative: str, write: Callable[[str], None]) -> None:
        final = self.path(relative)
        if self.location.scheme == "s3":
            # An S3 PUT (or completed multipart upload) becomes visible whole, never partially.
            guarded(f"write {self.location.uri}/{relative}", lambda: write(final))
            return
        directory, name = final.rsplit("/", 1)
        Path(directory).mkdir(parents=True, exist_ok=True)
        temporary = f"{directory}/.{name}.tmp-{uuid.uuid4().hex}"  # dot prefix: never picked up by readers
        try:
            write(temporary)
            Path(temporary).replace(final)  # atomic rename on POSIX
        finally:
            Path(temporary).unlink(missing_ok=True)
