"""The error hierarchy: every error says whether retrying can help (Terminal vs Transient)."""

from __future__ import annotations

from typing import ClassVar


class EvalsError(Exception):
    """Base of every error this package raises on purpose."""

    retryable: ClassVar[bool] = False


class TerminalError(EvalsError):
    """Retrying cannot help: bad config, rejected checkpoint, failed validation. Fails the task at once."""

    retryable = False


class TransientError(EvalsError):
    """Retrying may help: network, S3 5xx, a server not ready yet. Uses the task's retries."""

    retryable = True


class ConfigError(TerminalError, ValueError):
    """A setting, suite, scenario, watch-list or parameter is invalid."""


class SchemaViolation(TerminalError, ValueError):
    """A frame does not match its table's Arrow schema; raised before anything is written."""

    def __init__(self, table: str, column: str, problem: str) -> None:
        self.table = table
        self.column = column
        self.problem = problem
        super().__init__(f"table {table!r}, column {column!r}: {problem}")


class CheckpointRejected(TerminalError):
    """A checkpoint is refused (pickle weights, custom code, too large, revision mismatch)."""


class ValidationFailed(TerminalError):
    """Results failed the validation gate; the run was quarantined, not published."""


class RunNotFound(TerminalError, LookupError):
    """No run with this run_id exists where it was looked for."""


class StorageUnavailable(TransientError, OSError):
    """The object store or filesystem failed in a way that may pass (network, 5xx, throttling)."""


class ServerNotReady(TransientError):
    """A model server did not become ready in time or went away."""


class RateLimited(TransientError):
    """A remote API asked us to slow down (HTTP 429)."""
