"""Deterministic run ids and the names of the non-table areas beside the Iceberg tables."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

RUN_ID_LENGTH = 32
REPORTS_PREFIX = "_reports"
STAGING_PREFIX = "_staging"


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
