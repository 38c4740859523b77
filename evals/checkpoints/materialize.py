"""Safe materialization: pin, list, refuse what is unsafe, download allowed files into a SHA-keyed cache."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from evals.checkpoints import safety
from evals.checkpoints.cache import build_once, is_complete
from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.registry import get_source_class
from evals.checkpoints.sources.base import Source
from evals.errors import ConfigError, TerminalError

if TYPE_CHECKING:
    from evals.checkpoints.watchlist import Watchlist
    from evals.settings import Settings

log = logging.getLogger(__name__)


def materialize(
    ref: CheckpointRef | str,
    *,
    settings: Settings | None = None,
    watchlist: Watchlist | Path | str | None = None,
) -> Path:
    """A local directory holding the checkpoint at its pinned revision, safe to load without custom code.

    Only safetensors weights, configs and tokenizer files are fetched (plus ``*.py`` when the exact
    ``model_id@revision`` is allow-listed). Raises CheckpointRejected (terminal) naming the reason for pickle-only
    weights, custom code, oversize, or content that does not match the pinned revision. The result is cached
    under ``<cache_dir>/checkpoints/<source>/<model>/<revision>``; concurrent callers share one download.
    """
    from evals.settings import get_settings

    settings = settings or get_settings()
    ref = CheckpointRef.parse(ref) if isinstance(ref, str) else ref
    if ref.revision is not None and ref.source != "package":
        # A pinned ref already in the cache needs no source at all (works offline, makes no request).
        cached = Path(settings.cache_dir) / "checkpoints" / ref.cache_key()
        if is_complete(cached):
            return cached
    source = source_for(ref, settings, watchlist)
    ref = source.resolve(ref)
    allowlisted = safety.is_allowlisted(ref, settings.trust_remote_code_allowlist)

    prepared = source.prepared_dir(ref)
    if prepared is not None and not source.has_weights:
        return prepared  # a declaration (e.g. a hosted endpoint's endpoint.json): no weights to check
    if prepared is not None:
        safety.select_files(ref, source.list_files(ref), max_bytes=settings.checkpoint_max_bytes, allow_code=False)
        safety.check_custom_code(ref, prepared, allowlisted=False)
        return prepared

    final = Path(settings.cache_dir) / "checkpoints" / ref.cache_key()
    if is_complete(final):
        log.info("%s already materialized at %s", ref, final)
        return final
    files = safety.select_files(
        ref, source.list_files(ref), max_bytes=settings.checkpoint_max_bytes, allow_code=allowlisted
    )

    def build(tmp: Path) -> None:
        source.fetch(ref, files, tmp)
        safety.check_custom_code(ref, tmp, allowlisted=allowlisted)
        safety.check_tree(ref, tmp, files)

    log.info("materializing %s (%d files, %d bytes)", ref, len(files), sum(f.size or 0 for f in files))
    return build_once(final, build)


def allows_remote_code(ref: CheckpointRef, settings: Settings | None = None) -> bool:
    """Whether loading ``ref`` may use ``trust_remote_code``: only its exact ``model_id@revision`` allow-listed."""
    from evals.settings import get_settings

    return safety.is_allowlisted(ref, (settings or get_settings()).trust_remote_code_allowlist)


def source_for(ref: CheckpointRef, settings: Settings, watchlist: Watchlist | Path | str | None = None) -> Source:
    """The source that can serve ``ref``: from its uri, else the first matching watch-list entry's options."""
    cls = get_source_class(ref.source)
    if ref.uri is not None or ref.source in ("hf", "package"):
        return cls(settings)
    from evals.checkpoints.watchlist import Watchlist, load_watchlist

    if not isinstance(watchlist, Watchlist):
        watchlist = load_watchlist(watchlist if watchlist is not None else settings.watchlist)
    tried = []
    for entry in watchlist.entries:
        if entry.source != ref.source or entry.options is None:
            continue
        source = cls(settings, entry.options)
        try:
            source.resolve(ref)
            return source
        except TerminalError as exc:
            tried.append(str(exc))
    raise ConfigError(
        f"{ref}: no location known (no uri, and no {ref.source!r} watch-list entry holds it)"
        + (f": {'; '.join(tried)}" if tried else "")
    )
