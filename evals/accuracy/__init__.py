"""Accuracy evaluation with lm-eval: suites, backends, the runner, normalization into ``accuracy`` rows.

Nothing heavy is imported here; lm-eval, torch and transformers load when a suite actually runs.
"""

from evals.accuracy.runner import AccuracyOOM, AccuracyResult, request_cache_path, run_suite
from evals.accuracy.suites import Suite, available_suites, load_suite, validate_tasks

__all__ = [
    "AccuracyOOM",
    "AccuracyResult",
    "Suite",
    "available_suites",
    "load_suite",
    "request_cache_path",
    "run_suite",
    "validate_tasks",
]
