"""CLI commands of the checkpoints area: ``evals discover`` and ``evals materialize``."""

from __future__ import annotations

from pathlib import Path

import typer

from evals.cli.output import write_json


def register(app: typer.Typer) -> None:
    app.command("discover")(discover_command)
    app.command("materialize")(materialize_command)


def discover_command(
    watchlist: Path | None = typer.Option(None, "--watchlist", help="Watch-list YAML (default: EVALS_WATCHLIST)."),
    as_json: bool = typer.Option(False, "--json", help="Print new refs, exhausted refs and errors as JSON."),
) -> None:
    """Print the checkpoints not evaluated yet (one ref per line); exit 1 if a watch-list entry failed."""
    from evals.checkpoints.discover import discover
    from evals.errors import EvalsError

    try:
        result = discover(watchlist)
    except EvalsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        write_json(result.to_dict())
    else:
        for ref in result.new:
            typer.echo(str(ref))
        for item in result.exhausted:
            typer.echo(f"exhausted: {item.ref} failed {item.failures} times: {item.last_error}", err=True)
        for error in result.errors:
            typer.echo(f"error: {error.entry}: {error.message}", err=True)
    if result.errors:
        raise typer.Exit(1)


def materialize_command(
    ref: str = typer.Argument(..., help="source:model_id[@revision], e.g. hf:org/name@<40-hex sha>"),
    watchlist: Path | None = typer.Option(None, "--watchlist", help="Where s3/local refs are looked up."),
) -> None:
    """Fetch a checkpoint safely into the cache and print its local directory."""
    from evals.checkpoints.materialize import materialize
    from evals.errors import EvalsError

    try:
        path = materialize(ref, watchlist=watchlist)
    except EvalsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if not exc.retryable else 75) from exc
    typer.echo(str(path))
