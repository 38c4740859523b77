"""Loads the committed BIG-bench JSONL files for lm-eval (``custom_dataset``), relative to this folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"


def load(data_files: dict[str, str] | None = None, **_ignored: Any) -> Any:
    """A ``datasets.DatasetDict`` with one split per entry of ``data_files`` (names relative to data/).

    lm-eval passes the task metadata as keyword arguments too; they do not change the data, hence ignored.
    """
    import datasets

    if not data_files:
        raise ValueError("bigbench_data.load needs dataset_kwargs.data_files")
    files = {split: str(DATA_DIR / name) for split, name in data_files.items()}
    return datasets.load_dataset("json", data_files=files)
