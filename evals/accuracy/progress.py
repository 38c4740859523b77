"""Progress of a running evaluation: counts model requests, logs progress lines, silences tqdm under Airflow."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

# Called after each request the model answered (not the ones served from the cache): (request type, count so far).
RequestCallback = Callable[[str, int], None]


def use_log_lines(mode: str) -> bool:
    """Log lines instead of bars: asked for, or (auto) inside an Airflow task or with stderr not a terminal.

    Airflow logs everything written to stderr at error level, so tqdm bars there are noise that looks like failure.
    """
    if mode != "auto":
        return mode == "log"
    return bool(os.environ.get("AIRFLOW_CTX_DAG_ID")) or not sys.stderr.isatty()


class ProgressHook:
    """Wraps lm-eval's cache hook, which every backend calls once per answered request.

    It forwards to the real hook first, so the answer is in the request cache before anything else runs:
    a callback that raises (a test's interruption, a kill) loses no finished request.
    """

    # lm-eval's SqliteDict commits (and fsyncs) after every request, twice; committing every COMMIT_EVERY_S
    # instead costs a hard kill at most that much finished work, and keeps the cache off the critical path.
    COMMIT_EVERY_S = 2.0

    def __init__(self, inner: Any, *, every_s: float, log_lines: bool, on_request: RequestCallback | None) -> None:
        self._inner: Any = None
        self._last_commit = time.monotonic()
        self.inner = inner
        self.counts: Counter[str] = Counter()
        self.every_s = every_s
        self.log_lines = log_lines
        self.on_request = on_request
        self._started = time.monotonic()
        self._last_log = self._started

    @property
    def inner(self) -> Any:
        return self._inner

    @inner.setter
    def inner(self, hook: Any) -> None:
        self._inner = hook
        if self.dbdict is not None:
            self.dbdict.autocommit = False

    @property
    def dbdict(self) -> Any:
        return getattr(self._inner, "dbdict", None)

    def add_partial(self, attr: str, req: Any, res: Any) -> None:
        if self._inner is not None:
            self._inner.add_partial(attr, req, res)
        self.counts[attr] += 1
        total = sum(self.counts.values())
        now = time.monotonic()
        if self.dbdict is not None and now - self._last_commit >= self.COMMIT_EVERY_S:
            self.dbdict.commit()
            self._last_commit = now
        if self.log_lines and now - self._last_log >= self.every_s:
            self._last_log = now
            log.info(
                "accuracy progress: %d model requests answered (%s), %.1f/s",
                total,
                ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())),
                total / (now - self._started),
            )
        if self.on_request is not None:
            self.on_request(attr, total)

    @property
    def model_calls(self) -> int:
        return sum(self.counts.values())


def install(lm: Any, hook: ProgressHook) -> None:
    """Put ``hook`` in front of ``lm``'s cache hook, now and whenever lm-eval sets a new one (use_cache does)."""
    original = lm.set_cache_hook
    hook.inner = getattr(lm, "cache_hook", None)

    def set_cache_hook(cache_hook: Any) -> None:
        hook.inner = cache_hook
        original(hook)

    lm.set_cache_hook = set_cache_hook
    original(hook)


@contextmanager
def quiet_bars(enabled: bool) -> Iterator[None]:
    """Disable tqdm (lm-eval, datasets, transformers) for the duration; restores everything afterwards."""
    if not enabled:
        yield
        return
    import tqdm.std

    original = tqdm.std.tqdm.__init__

    def quiet_init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        original(self, *args, **kwargs)

    tqdm.std.tqdm.__init__ = quiet_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        tqdm.std.tqdm.__init__ = original  # type: ignore[method-assign]
