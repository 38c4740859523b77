"""Celery worker settings: Airflow's defaults, plus the heavy libraries our tasks import, loaded once per worker.

A Celery worker forks a process per task, and each of ours used to import great_expectations, lm-eval and pyiceberg
afresh: on 2 cores a publish spent more time importing GX than validating and committing. Loaded in the worker
before it forks (Airflow preloads its own operators the same way, on the same signal), every task process starts
with them. Use it on every Airflow container of a Celery deployment (the scheduler reads the same settings to send
tasks; only a worker preloads)::

    AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=evals.orchestration.worker.CELERY_CONFIG
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import import_modules

log = logging.getLogger(__name__)

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)

# What the task steps import inside their bodies (the DAG files stay light to parse), heaviest first. An image
# without one of them (the control plane has no lm-eval extras on some deployments) skips it.
PRELOAD = (
    "great_expectations",  # the validation gate (publish)
    "evals.validation.runtime",
    "lm_eval.evaluator",  # accuracy (evaluate)
    "evals.accuracy.runner",
    "evals.latency.runner",
    "pyiceberg.catalog.sql",  # the warehouse (every step)
    "evals.warehouse.store",
    "evals.pipeline.steps",
)


@import_modules.connect
def preload(*args: Any, **kwargs: Any) -> None:
    """Import :data:`PRELOAD` in the worker's main process (before Airflow's own preload freezes the GC)."""
    started = time.monotonic()
    loaded = []
    for module in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
            loaded.append(module)
    log.info("preloaded %d module(s) for task processes in %.1fs: %s", len(loaded), time.monotonic() - started, loaded)
