"""An outage in the middle of a publish: a service stops after the run's first table is committed, before the next."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from evals.warehouse import Warehouse


@contextmanager
def outage_after_the_first_table(monkeypatch: pytest.MonkeyPatch, stop: Callable[[], None]) -> Iterator[list[str]]:
    """While inside, the first commit of a table after ``accuracy`` calls ``stop`` first (accuracy is committed;
    the service is gone before the next table). Yields the tables it was called before (one, once it happened)."""
    original = Warehouse._replace_rows
    stopped: list[str] = []

    def replace_rows(self: Warehouse, name: str, *args: Any, **kwargs: Any) -> None:
        if name != "accuracy" and not stopped:
            stop()
            stopped.append(name)
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(Warehouse, "_replace_rows", replace_rows)
    try:
        yield stopped
    finally:
        monkeypatch.setattr(Warehouse, "_replace_rows", original)
