"""Loads the guardrails suite's JSONL files for lm-eval (``custom_dataset``), checking each record's fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"


def load(data_files: dict[str, str] | None = None, fields: dict[str, str] | None = None, **_ignored: Any) -> Any:
    """A ``datasets.DatasetDict`` with one split per ``data_files`` entry (names relative to data/).

    ``fields`` (name -> type) is what every record must carry; a missing file or a bad record is a ConfigError
    naming the file, the line and the field. lm-eval passes the task metadata as keyword arguments too (ignored).
    """
    from evals.accuracy.task_data import load_splits

    return load_splits(DATA_DIR, data_files, fields)
