"""Deterministic run ids and the Hive layout of warehouse paths."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

RUN_ID_LENGTH = 32
COMPACTED_PREFIX = "compacted-g"
QUARANTINE_PREFIX = "_quarantine"
REPORTS_PREFIX = "_reports"
STAGING_PREFIX = "_staging"
PARTITION_PREFIX = "eval_date="  # Hive partition directory: <table>/eval_date=YYYY-MM-DD/


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


def partition_dir(table: str, eval_date: dt.date, *, quarantine: bool = False) -> str:
    """Relative directory of one partition, e.g. ``accuracy/eval_date=2026-11-29``."""
    prefix = f"{QUARANTINE_PREFIX}/" if quarantine else ""
    return f"{prefix}{table}/{PARTITION_PREFIX}{eval_date.isoformat()}"


def run_file(table: str, eval_date: dt.date, run_id: str, *, quarantine: bool = False) -> str:
    return f"{partition_dir(table, eval_date, quarantine=quarantine)}/{run_id}.parquet"


def compacted_file(table: str, eval_date: dt.date, generation: int) -> str:
    return f"{partition_dir(table, eval_date)}/{COMPACTED_PREFIX}{generation:06d}.parquet"


def partition_date(path: str) -> dt.date | None:
    """The eval_date of a file from its partition directory (``.../eval_date=YYYY-MM-DD/<name>``), else None."""
    parts = path.rsplit("/", 2)
    if len(parts) < 2 or not parts[-2].startswith(PARTITION_PREFIX):
        return None
    try:
        return dt.date.fromisoformat(parts[-2][len(PARTITION_PREFIX) :])
    except ValueError:
        return None


def compacted_generation(filename: str) -> int | None:
    """Generation number of a compacted file name, None for a per-run file."""
    if filename.startswith(COMPACTED_PREFIX) and filename.endswith(".parquet"):
        digits = filename[len(COMPACTED_PREFIX) : -len(".parquet")]
        return int(digits) if digits.isdigit() else None
    return None
