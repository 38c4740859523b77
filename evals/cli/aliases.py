"""Old command names that users' scripts still call: hidden aliases that say the new name, then run the command."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer


def hidden_alias(app: typer.Typer, old: str, new: str, command: Callable[..., Any]) -> None:
    """Register ``evals <old>`` (left out of ``--help``) as ``command``, with a note that it is ``evals <new>`` now."""

    @functools.wraps(command)
    def moved(*args: Any, **kwargs: Any) -> Any:
        typer.echo(f"note: 'evals {old}' is now 'evals {new}'", err=True)
        return command(*args, **kwargs)

    app.command(old, hidden=True)(moved)
