"""The ``evals`` command: one Typer app; each module of ``COMMAND_MODULES`` (``evals.cli.<area>``) adds its own."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

import typer

app = typer.Typer(
    name="evals",
    help="Evaluate open-weight LLM checkpoints (accuracy, latency, cost) into a Parquet warehouse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines ``register(app: typer.Typer) -> None``; it must import nothing heavy at module level.
COMMAND_MODULES = (
    "evals.cli.warehouse",
    "evals.cli.analysis",
    "evals.cli.checkpoints",
    "evals.cli.accuracy",
    "evals.cli.latency",
    "evals.cli.validation",
    "evals.cli.pipeline",
    "evals.cli.decide",
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command("settings")
def show_settings() -> None:
    """Every setting: its EVALS_ variable, current value (secrets masked) and meaning."""
    from pydantic import SecretStr

    from evals.settings import Settings, get_settings

    current = get_settings()
    for name, field in Settings.model_fields.items():
        value = getattr(current, name)
        shown = "********" if isinstance(value, SecretStr) else value
        typer.echo(f"EVALS_{name.upper()}={shown}")
        if field.description:
            typer.echo(f"    {field.description}")


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            present = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the area's package does not exist (yet)
            present = False
        if present:
            importlib.import_module(name).register(app)


_register_all()


def main() -> None:
    """Console entry point: errors of ours print one clear line, not a traceback (exit 2: terminal, 75: retry)."""
    from evals.errors import EvalsError

    try:
        app()
    except EvalsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(75 if exc.retryable else 2) from None
