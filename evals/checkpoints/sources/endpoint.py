"""The ``endpoint`` source: a hosted or proprietary model behind any OpenAI-compatible API, priced per token.

A watch-list (or serving config) entry declares it::

    - source: endpoint
      model: gpt-4o-mini                      # the model name requests carry
      base_url: https://api.openai.com/v1
      price_input_per_1m: 0.15                # USD per 1M input (prompt) tokens   - required
      price_output_per_1m: 0.60               # USD per 1M output tokens           - required
      conn_id: openai_default                 # an Airflow connection: its password is the key, or
      api_key_env: OPENAI_API_KEY             # the NAME of an environment variable holding it

There are no weights: the "checkpoint" is the declaration. Its revision is the SHA-256 of what identifies it
(base URL, model, prices: a price change is a new revision), and materializing it writes ``endpoint.json``, the
declaration with the *names* of the credentials only. The key itself is read when a request is about to be sent
(:func:`api_key`), from the connection or the environment, and is never stored in a ref, a row, a log or XCom.
A hosted model may change behind the same name; the nightly re-measurement is what notices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.safety import RemoteFile
from evals.checkpoints.sources.base import Source, SourceOptions
from evals.errors import ConfigError, TerminalError, TransientError

log = logging.getLogger(__name__)
DESCRIPTOR = "endpoint.json"


class EndpointOptions(SourceOptions):
    """One hosted model: where, which, at what price, and where its key lives (a name, never the key)."""

    model: str = Field(min_length=1)
    base_url: str
    price_input_per_1m: float = Field(ge=0)
    price_output_per_1m: float = Field(ge=0)
    conn_id: str | None = None
    api_key_env: str | None = None
    # A local tokenizer directory for a latency scenario's synthetic prompts (a hosted model ships none); not part
    # of the identity. Without it, only scenarios with their own prompts (jsonl, conversations) can run.
    tokenizer: str | None = None

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {value!r}")
        if "@" in value.split("//", 1)[1].split("/", 1)[0]:
            raise ValueError("base_url must not carry credentials; use conn_id or api_key_env")
        return value.rstrip("/").removesuffix("/v1")

    def identity(self) -> dict[str, Any]:
        """What the revision hashes: the declaration without the credentials' names."""
        return self.model_dump(include={"model", "base_url", "price_input_per_1m", "price_output_per_1m"})


def endpoint_options(raw: dict[str, Any]) -> EndpointOptions:
    """Validated options; a ConfigError naming the missing or bad field (a missing price included)."""
    try:
        return EndpointOptions.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "entry"
        hint = " (USD per 1M tokens; the cost of a hosted model comes from it)" if "price" in field else ""
        raise ConfigError(f"endpoint source, field {field!r}: {first['msg']}{hint}") from exc


def endpoint_ref(options: EndpointOptions) -> CheckpointRef:
    """The pinned ref of a declaration: ``endpoint:<model>@<sha256 of the declaration>``."""
    digest = hashlib.sha256(json.dumps(options.identity(), sort_keys=True).encode()).hexdigest()
    return CheckpointRef("endpoint", options.model, digest)


class EndpointSource(Source):
    """A hosted OpenAI-compatible model (see the module doc); discover() yields its one pinned ref."""

    name = "endpoint"
    options_model = EndpointOptions
    has_weights = False

    def __init__(self, settings: Any, options: EndpointOptions | dict[str, Any] | None = None) -> None:
        if isinstance(options, dict):
            options = endpoint_options(options)
        super().__init__(settings, options)

    @property
    def declared(self) -> EndpointOptions:
        if not isinstance(self.options, EndpointOptions):
            raise ConfigError("an endpoint ref needs its declaration (a watch-list or serving-config entry)")
        return self.options

    def discover(self) -> list[CheckpointRef]:
        return [endpoint_ref(self.declared)]

    def resolve(self, ref: CheckpointRef) -> CheckpointRef:
        declared = endpoint_ref(self.declared)
        if ref.model_id != declared.model_id or ref.revision not in (None, declared.revision):
            raise TerminalError(f"{ref}: not the declared endpoint {declared} (model or prices changed)")
        return declared

    def list_files(self, ref: CheckpointRef) -> list[RemoteFile]:
        return []  # no weights: nothing is downloaded

    def fetch(self, ref: CheckpointRef, files: list[RemoteFile], dest: Path) -> None:
        write_descriptor(self.declared, dest)

    def prepared_dir(self, ref: CheckpointRef) -> Path:
        from evals.checkpoints.cache import build_once

        final = Path(self.settings.cache_dir) / "checkpoints" / self.resolve(ref).cache_key()

        def build(tmp: Path) -> None:
            write_descriptor(self.declared, tmp)

        return build_once(final, build)


def write_descriptor(options: EndpointOptions, directory: Path) -> Path:
    """``endpoint.json``: the declaration, credentials by name only."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DESCRIPTOR
    path.write_text(json.dumps(options.model_dump(), indent=2, sort_keys=True))
    return path


def load_descriptor(directory: Path) -> EndpointOptions | None:
    """The declaration a materialized endpoint ref left in ``directory``; None for a checkpoint with weights."""
    path = Path(directory) / DESCRIPTOR
    return endpoint_options(json.loads(path.read_text())) if path.is_file() else None


def api_key(options: EndpointOptions) -> str | None:
    """The key, read now from the connection (its password) or the environment; None when none is declared."""
    import os

    if options.conn_id:
        from evals.connections import get_connection

        key = get_connection(options.conn_id).password
        if not key:
            raise ConfigError(f"endpoint {options.model}: connection {options.conn_id!r} has no password (the key)")
        return key
    if options.api_key_env:
        key = os.environ.get(options.api_key_env)
        if not key:
            raise ConfigError(f"endpoint {options.model}: environment variable {options.api_key_env} is not set")
        return key
    return None


def auth_headers(options: EndpointOptions) -> tuple[tuple[str, str], ...]:
    """The request headers carrying the key (for :class:`evals.latency.client.Target`, whose repr hides them)."""
    key = api_key(options)
    return (("Authorization", f"Bearer {key}"),) if key else ()


def where_the_key_lives(options: EndpointOptions) -> str:
    if options.conn_id:
        return f"the password of connection {options.conn_id!r}"
    if options.api_key_env:
        return f"environment variable {options.api_key_env}"
    return "no key configured (set conn_id or api_key_env)"


def check_access(options: EndpointOptions, *, timeout_s: float = 30.0) -> None:
    """``GET /v1/models`` with the key: 401/403 is a TerminalError saying where the key came from; 429 and 5xx
    are transient; anything else answering is fine (some APIs do not list models)."""
    request = urllib.request.Request(f"{options.base_url}/v1/models", headers=dict(auth_headers(options)))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise TransientError(f"endpoint {options.base_url} unreachable: {exc}") from exc
    if status in (401, 403):
        raise TerminalError(
            f"endpoint {options.base_url} refused the credentials for {options.model} (HTTP {status}): check "
            f"{where_the_key_lives(options)}"
        )
    if status == 429 or status >= 500:
        raise TransientError(f"endpoint {options.base_url} answered HTTP {status}")
    log.info("endpoint %s answered HTTP %d to /v1/models; continuing", options.base_url, status)


def usd_per_1m_output_tokens(options: EndpointOptions, prompt_tokens: int, output_tokens: int) -> float | None:
    """What 1M output tokens cost with this traffic's mix: (input tokens x input price + output tokens x output
    price) / output tokens x 1e6 — the hosted counterpart of GPU-hours / tokens per hour."""
    if output_tokens <= 0:
        return None
    total = prompt_tokens * options.price_input_per_1m + output_tokens * options.price_output_per_1m
    return total / output_tokens
