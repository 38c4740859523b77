"""Choices offered by the DAG parameter forms: the shipped suites, scenarios and backends (file names only)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# The accuracy backend registry's names, written out: importing evals.accuracy at parse time costs ~0.1 s per
# DAG file. tests/dags/test_dagbag.py keeps the two lists equal.
BACKENDS = ["auto", "hf", "vllm", "local-completions", "local-chat-completions"]


def _yaml_stems(folder: str) -> list[str]:
    # A directory listing, not a YAML parse: the DAG processor pays microseconds for it.
    return sorted(p.stem for p in (PACKAGE_DIR / folder).glob("*.yaml"))


def suite_names() -> list[str]:
    return _yaml_stems("suites")


def scenario_names() -> list[str]:
    return _yaml_stems("scenarios")
