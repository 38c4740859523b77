"""The ``hf`` source: the Hugging Face Hub via huggingface_hub — new models by filter, new commits on repos."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, model_validator

from evals.checkpoints.ref import CheckpointMeta, CheckpointRef
from evals.checkpoints.safety import RemoteFile, is_allowlisted
from evals.checkpoints.sources.base import Source, SourceOptions
from evals.errors import CheckpointRejected, ConfigError, RateLimited, TerminalError, TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")

# huggingface_hub's shared HTTP client has no timeout: a hung connection would stall a task forever.
_TIMEOUT_S = 60.0


class HubUnavailable(TransientError):
    """The Hub kept failing (5xx, network) after bounded retries."""


class HfOptions(SourceOptions):
    """Either a tracked repo (``model_id`` + ``ref``) or a search (``author``/``search``/``filter``)."""

    model_id: str | None = None
    ref: str = "main"
    history: int = Field(1, ge=1, le=100, description="Newest commits of the ref to consider (tracked repos).")
    author: str | None = None
    search: str | None = None
    filter: list[str] = Field(default_factory=list)
    limit: int = Field(20, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_mode(self) -> HfOptions:
        searching = bool(self.author or self.search or self.filter)
        if self.model_id and searching:
            raise ValueError("give either model_id (a tracked repo) or author/search/filter, not both")
        if not self.model_id and not searching:
            raise ValueError("give model_id, or at least one of author, search, filter")
        if self.model_id:
            from evals.checkpoints.ref import validate_model_id

            validate_model_id(self.model_id)
        return self


class HfSource(Source):
    """Pins every ref to the commit SHA the Hub reports; downloads with ``snapshot_download(allow_patterns)``."""

    name = "hf"
    options_model = HfOptions

    # ------------------------------------------------------------------ plumbing

    def endpoint(self) -> str:
        # Read now, not at import: huggingface_hub freezes HF_ENDPOINT when it is first imported.
        return (self.settings.hf_endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")

    def token(self) -> str | None:
        if self.settings.hf_token is not None:
            return self.settings.hf_token.get_secret_value()
        if self.settings.hf_conn_id:
            from evals.connections import get_connection

            return get_connection(self.settings.hf_conn_id).password
        return None  # huggingface_hub then reads HF_TOKEN / the saved token itself

    def api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint(), token=self.token())

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run a Hub call; retry 429 (honouring Retry-After, capped) and 5xx/network errors, boundedly."""
        attempts = self.settings.hf_max_attempts
        wait = self.settings.hf_backoff_s
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except Exception as exc:
                status, retry_after = _classify(exc)
                if status is None:
                    raise
                if status == 0 and attempt == attempts:
                    raise HubUnavailable(f"{what}: Hub unreachable after {attempts} attempts: {exc}") from exc
                if status == 429 and attempt == attempts:
                    raise RateLimited(f"{what}: Hub rate limit (429) after {attempts} attempts") from exc
                if status >= 500 and attempt == attempts:
                    raise HubUnavailable(f"{what}: Hub error {status} after {attempts} attempts") from exc
                if status in (401, 403):
                    raise ConfigError(f"{what}: Hub refused access ({status}); check the token") from exc
                if status == 404:
                    raise ConfigError(f"{what}: not found on the Hub ({_first_line(exc)})") from exc
                if status not in (0, 429) and status < 500:
                    raise TerminalError(f"{what}: Hub error {status}: {_first_line(exc)}") from exc
                delay = min(retry_after if retry_after is not None else wait, self.settings.hf_max_wait_s)
                log.warning(
                    "%s: Hub answered %s, attempt %d/%d, retrying in %.1fs",
                    what,
                    status or "no connection",
                    attempt,
                    attempts,
                    delay,
                )
                time.sleep(delay)
                wait *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ discovery

    @property
    def opts(self) -> HfOptions:
        if not isinstance(self.options, HfOptions):
            raise ConfigError("this hf source has no watch-list options (model_id or author/search/filter)")
        return self.options

    def discover(self) -> list[CheckpointRef]:
        api, o = self.api(), self.opts
        if o.model_id:
            model_id = o.model_id
            info = self.call(
                f"model_info {model_id}@{o.ref}", lambda: api.model_info(model_id, revision=o.ref, timeout=_TIMEOUT_S)
            )
            meta = _meta(info)
            if o.history == 1:
                return [self._ref(model_id, info.sha, meta)]
            commits = self.call(
                f"list_repo_commits {model_id}@{o.ref}",
                lambda: api.list_repo_commits(model_id, revision=o.ref)[: o.history],
            )
            return [self._ref(model_id, c.commit_id, meta) for c in commits]
        models = self.call(
            "list_models",
            lambda: list(
                api.list_models(
                    author=o.author,
                    search=o.search,
                    filter=o.filter or None,
                    limit=o.limit,
                    expand=["sha", "createdAt", "cardData", "safetensors"],
                )
            ),
        )
        refs = []
        for info in models:
            if not info.sha:
                self.problems.append(f"hf:{info.id}: the Hub listed it without a commit SHA")
                continue
            try:
                refs.append(self._ref(info.id, info.sha, _meta(info)))
            except ConfigError as exc:
                self.problems.append(f"hf:{info.id}: {exc}")
        return refs

    def _ref(self, model_id: str, sha: str | None, meta: CheckpointMeta) -> CheckpointRef:
        if not sha:
            raise ConfigError(f"hf:{model_id}: the Hub returned no commit SHA")
        return CheckpointRef("hf", model_id, sha, uri=f"{self.endpoint()}/{model_id}/tree/{sha}", meta=meta)

    def resolve(self, ref: CheckpointRef) -> CheckpointRef:
        api = self.api()
        wanted = ref.revision or self.opts_ref()
        info = self.call(
            f"model_info {ref.model_id}@{wanted}",
            lambda: api.model_info(ref.model_id, revision=wanted, timeout=_TIMEOUT_S),
        )
        if ref.revision is not None and info.sha != ref.revision:
            raise CheckpointRejected(f"{ref}: the Hub resolved the pinned revision to {info.sha}")
        return self._ref(ref.model_id, info.sha, _meta(info))

    def opts_ref(self) -> str:
        return self.options.ref if isinstance(self.options, HfOptions) else "main"

    # ------------------------------------------------------------------ materialization

    def list_files(self, ref: CheckpointRef) -> list[RemoteFile]:
        api = self.api()
        info = self.call(
            f"model_info {ref}",
            lambda: api.model_info(ref.model_id, revision=ref.revision, files_metadata=True, timeout=_TIMEOUT_S),
        )
        if info.sha != ref.revision:
            raise CheckpointRejected(f"{ref}: the Hub answered for commit {info.sha}, not the pinned one")
        config = info.config if isinstance(info.config, dict) else {}
        if config.get("auto_map") and not is_allowlisted(ref, self.settings.trust_remote_code_allowlist):
            # Refuse before downloading gigabytes; the downloaded config.json is checked again afterwards.
            raise CheckpointRejected(
                f"{ref}: the checkpoint requires custom code (config.json: auto_map); refused because "
                f"'{ref.model_id}@{ref.revision}' is not in EVALS_TRUST_REMOTE_CODE_ALLOWLIST"
            )
        return [
            RemoteFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs is not None else None) for s in (info.siblings or [])
        ]

    def fetch(self, ref: CheckpointRef, files: list[RemoteFile], dest: Path) -> None:
        from huggingface_hub import snapshot_download

        self.call(
            f"snapshot_download {ref}",
            lambda: snapshot_download(
                ref.model_id,
                revision=ref.revision,
                allow_patterns=[f.path for f in files],
                local_dir=dest,
                endpoint=self.endpoint(),
                token=self.token(),
                max_workers=4,
            ),
        )
        for item in files:
            fetched_commit = _downloaded_commit(dest, item.path)
            if fetched_commit != ref.revision:
                raise CheckpointRejected(f"{ref}: {item.path} was fetched from commit {fetched_commit}")
            if item.sha256 is not None:
                actual = _sha256(dest / item.path)
                if actual != item.sha256:
                    raise CheckpointRejected(f"{ref}: {item.path} has SHA-256 {actual}, the Hub says {item.sha256}")
        shutil.rmtree(dest / ".cache", ignore_errors=True)


def _classify(exc: BaseException) -> tuple[int | None, float | None]:
    """(HTTP status or 0 for a network failure, Retry-After seconds) of a retryable error; (None, None) else."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled) or (
        isinstance(exc, LocalEntryNotFoundError) and isinstance(exc.__cause__, OfflineModeIsEnabled)
    ):
        raise ConfigError("HF_HUB_OFFLINE is set: the hf source cannot reach the Hub") from exc
    if isinstance(exc, LocalEntryNotFoundError):
        # snapshot_download's answer when the Hub failed mid-way and nothing is cached: a network-class failure.
        cause = exc.__cause__
        return (_classify(cause)[0] or 0, None) if cause is not None else (0, None)
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        response = exc.response
        retry_after: float | None = None
        header = response.headers.get("Retry-After")
        if header is not None:
            try:
                retry_after = max(0.0, float(header))
            except ValueError:
                retry_after = None
        return int(response.status_code), retry_after
    if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore") or isinstance(exc, ConnectionError):
        return 0, None
    return None, None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _meta(info: Any) -> CheckpointMeta:
    safetensors = getattr(info, "safetensors", None)
    params = getattr(safetensors, "total", None)
    dtypes: dict[str, int] = dict(getattr(safetensors, "parameters", None) or {})
    card = getattr(info, "card_data", None)
    license_ = getattr(card, "license", None) if card is not None else None
    created = getattr(info, "created_at", None)
    return CheckpointMeta(
        params=int(params) if params is not None else None,
        dtype=max(dtypes, key=lambda name: dtypes[name]) if dtypes else None,
        license=str(license_) if license_ else None,
        created_at=created if isinstance(created, dt.datetime) else None,
    )


def _downloaded_commit(local_dir: Path, path: str) -> str | None:
    # huggingface_hub records, per downloaded file, the commit it came from (first line of the metadata file).
    metadata = local_dir / ".cache" / "huggingface" / "download" / f"{path}.metadata"
    if not metadata.is_file():
        return None
    return metadata.read_text().splitlines()[0].strip() or None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
