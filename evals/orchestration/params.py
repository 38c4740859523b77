"""Choices offered by the DAG parameter forms: the shipped suites, scenarios and backends (file names only)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BACKENDS = ["auto", "hf", "vllm", "local-completions", "local-chat-completions"]


def _yaml_stems(folder: str) -> list[str]:
    # A directory listing, not a YAML parse: the DAG processor pays microseconds for it.
    return sorted(p.stem for p in (PACKAGE_DIR / folder).glob("*.yaml"))


def suite_names() -> list[str]:
    return _yaml_stems("suites")


def scenario_names() -> list[str]:
    return _yaml_stems("scenarios")
