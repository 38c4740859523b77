"""Retry semantics in Airflow terms: TerminalError fails at once, TransientError uses the task's retries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception="evals.errors.TerminalError",
            action=RetryAction.FAIL,
            reason="terminal error (bad config, rejected checkpoint, failed validation): retrying cannot help",
        ),
        RetryRule(
            exception="evals.errors.TransientError",
            action=RetryAction.RETRY,
            reason="transient error (network, storage, server not ready): retrying with backoff",
        ),
    ],
    default=RetryAction.DEFAULT,
)


def default_args(retries: int, retry_delay_s: float) -> dict[str, Any]:
    """Task defaults shared by every DAG: exponential backoff, and the retry policy above."""
    return {
        "owner": "checkpoint-evals",
        "retries": retries,
        "retry_delay": dt.timedelta(seconds=retry_delay_s),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=15),
        "retry_policy": RETRY_POLICY,
    }
