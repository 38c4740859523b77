"""The night's discovery problems (watch-list entries that failed, refs no longer retried), kept for the report."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.checkpoints.discover import DiscoveryResult
    from evals.warehouse import Warehouse

DISCOVERY_PREFIX = "_discovery"


def discovery_key(logical_date: dt.date) -> str:
    return f"{DISCOVERY_PREFIX}/{logical_date.isoformat()}.json"


def record_discovery(warehouse: Warehouse, logical_date: dt.date, found: DiscoveryResult) -> dict[str, Any]:
    """Keep what discovery could not do on this night (rewritten by a rerun of the same night)."""
    entry = {
        "logical_date": logical_date.isoformat(),
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "errors": [error.to_dict() for error in found.errors],
        "exhausted": [item.to_dict() for item in found.exhausted],
        "new": len(found.new),
        "already_evaluated": found.already_evaluated,
    }
    warehouse.storage.write_json(discovery_key(logical_date), entry)
    return entry


def latest_discovery(warehouse: Warehouse) -> dict[str, Any] | None:
    """The most recent night's discovery record, or None when no nightly run recorded one."""
    names = sorted(
        info.base_name for info in warehouse.storage.list_files(DISCOVERY_PREFIX) if info.base_name.endswith(".json")
    )
    if not names:
        return None
    data = warehouse.storage.read_json(f"{DISCOVERY_PREFIX}/{names[-1]}")
    return data if isinstance(data, dict) else None
