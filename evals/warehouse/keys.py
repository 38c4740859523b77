"""Deterministic run ids and the name of every storage area beside the Iceberg tables (the only place naming them)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

RUN_ID_LENGTH = 32
# The areas beside the tables, relative to the warehouse root; nothing else in the package spells these names.
STAGING_PREFIX = "_staging"  # rows of evaluated runs waiting for the gate: <run_id>/<table>.json
REPORTS_PREFIX = "_reports"  # what people read
REPORT_KEY = f"{REPORTS_PREFIX}/report.html"  # the comparison report, rebuilt each night
VALIDATION_DOCS_PREFIX = f"{REPORTS_PREFIX}/validation"  # GX Data Docs
DISCOVERY_PREFIX = "_discovery"  # one JSON per night: what discovery could not do
VALIDATION_PREFIX = "_quarantine/_validation"  # the validation result of each quarantined run


def discovery_key(logical_date: dt.date) -> str:
    return f"{DISCOVERY_PREFIX}/{logical_date.isoformat()}.json"


def validation_key(run_id: str) -> str:
    """Where the validation result of a quarantined run lives, relative to the warehouse root."""
    return f"{VALIDATION_PREFIX}/{run_id}.json"


def make_run_id(
    model_id: str,
    revision: str,
    suite: str | None,
    suite_version: str | None,
    scenario: str | None,
    scenario_version: str | None,
    logical_date: dt.datetime,
) -> str:
    """Hash of (model, revision SHA, suite@version, scenario@version, logical date).

    A retry or a rerun of the same DAG run computes the same id, so it rewrites the same keys.
    """
    key = [
        model_id,
        revision,
        f"{suite}@{suite_version}" if suite else None,
        f"{scenario}@{scenario_version}" if scenario else None,
        as_utc(logical_date).isoformat(),
    ]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:RUN_ID_LENGTH]


def as_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"logical date {moment.isoformat()} has no timezone; pass an aware datetime (UTC)")
    return moment.astimezone(dt.UTC)


def eval_date_of(logical_date: dt.datetime) -> dt.date:
    return as_utc(logical_date).date()
