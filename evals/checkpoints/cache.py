"""The content-keyed directory cache: build a directory once, atomically, safe across processes."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# Marker written last inside a finished entry: a directory without it is never trusted.
COMPLETE_MARKER = ".complete"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) on ``path``; released when the process dies, so never stale."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def is_complete(directory: Path) -> bool:
    return (directory / COMPLETE_MARKER).is_file()


def build_once(final: Path, build: Callable[[Path], None]) -> Path:
    """Return ``final``, building it with ``build(tmp_dir)`` first if no complete copy exists.

    The lock makes concurrent callers wait for one build instead of repeating it; the build writes into a
    private temporary sibling that is renamed into place only when complete, so a crash or a reader never
    sees a half-written entry.
    """
    if is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(final.parent / f".{final.name}.lock"):
        if is_complete(final):
            return final
        if final.exists():
            log.warning("removing incomplete cache entry %s", final)
            shutil.rmtree(final)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            build(tmp)
            (tmp / COMPLETE_MARKER).write_text("ok\n")
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final
