"""Credentials never leave the process: masking for URLs and server command lines stored in run configs."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

_SECRET_FLAGS = ("--api-key", "--hf-token", "--token")


def redact_url(url: str | None) -> str | None:
    """``url`` without user:password (runs.config is stored in Parquet; credentials never are)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def redact_command(command: Sequence[str]) -> list[str]:
    """The server command line with the values of secret-bearing flags masked."""
    out: list[str] = []
    hide_next = False
    for arg in command:
        if hide_next:
            out.append("********")
            hide_next = False
        elif arg in _SECRET_FLAGS:
            out.append(arg)
            hide_next = True
        elif any(arg.startswith(f"{flag}=") for flag in _SECRET_FLAGS):
            out.append(arg.split("=", 1)[0] + "=********")
        else:
            out.append(arg)
    return out
