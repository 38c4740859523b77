"""The validation gate: GX suites per table, publish or quarantine, re-validation, Data Docs."""

from evals.validation.expected import Expected
from evals.validation.gate import (
    quarantine_report,
    quarantined_runs,
    revalidate,
    validate,
    validate_and_write,
)

__all__ = [
    "Expected",
    "quarantine_report",
    "quarantined_runs",
    "revalidate",
    "validate",
    "validate_and_write",
]
