"""Watermark discovery: refs from every watch-list entry, minus those the ``runs`` table says are evaluated."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.checkpoints.ref import CheckpointRef
from evals.checkpoints.registry import get_source_class
from evals.checkpoints.watchlist import EntryError, EvaluateSpec, Watchlist, load_watchlist
from evals.errors import EvalsError, TransientError

if TYPE_CHECKING:
    from evals.settings import Settings
    from evals.warehouse import RunRecord, Warehouse

log = logging.getLogger(__name__)

DONE_STATUSES = ("published", "quarantined")


@dataclass(frozen=True)
class Exhausted:
    """A ref whose runs failed ``failures`` times (>= max attempts): reported, no longer rediscovered."""

    ref: CheckpointRef
    failures: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"ref": str(self.ref), "failures": self.failures, "last_error": self.last_error}


@dataclass
class DiscoveryResult:
    """``new``: refs to evaluate (sorted, deduplicated); ``exhausted`` and ``errors``: what to tell a human."""

    new: list[CheckpointRef] = field(default_factory=list)
    exhausted: list[Exhausted] = field(default_factory=list)
    errors: list[EntryError] = field(default_factory=list)
    already_evaluated: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": [ref.to_dict() for ref in self.new],
            "exhausted": [item.to_dict() for item in self.exhausted],
            "errors": [error.to_dict() for error in self.errors],
            "already_evaluated": self.already_evaluated,
        }

    def night_summary(self) -> dict[str, Any]:
        """What the night's discovery log keeps: problems in full, the new and already-evaluated counts."""
        return {
            "errors": [error.to_dict() for error in self.errors],
            "exhausted": [item.to_dict() for item in self.exhausted],
            "new": len(self.new),
            "already_evaluated": self.already_evaluated,
        }


def discover(
    watchlist: Watchlist | Path | str | None = None,
    *,
    settings: Settings | None = None,
    warehouse: Warehouse | None = None,
    evaluate: EvaluateSpec | None = None,
    suite: str | None = None,
    suite_version: str | None = None,
    scenario: str | None = None,
    scenario_version: str | None = None,
) -> DiscoveryResult:
    """Every pinned ref the watch-list points at that has no published/quarantined run yet.

    The watermark key is the watch-list's ``evaluate`` block (or ``evaluate``), with any of ``suite``,
    ``suite_version``, ``scenario``, ``scenario_version`` given here taking precedence.
    Deterministic (same inputs, same list), and stateless: the ``runs`` table is the only watermark. A ref
    whose runs failed fewer than max attempts times is returned again (a retry); after that it is reported
    in ``exhausted``. A failing entry lands in ``errors`` and the other entries still run.
    """
    from evals.settings import get_settings

    settings = settings or get_settings()
    if not isinstance(watchlist, Watchlist):
        watchlist = load_watchlist(watchlist if watchlist is not None else settings.watchlist)
    spec = evaluate or watchlist.evaluate
    overrides = {
        "suite": suite,
        "suite_version": suite_version,
        "scenario": scenario,
        "scenario_version": scenario_version,
    }
    spec = spec.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    result = DiscoveryResult(errors=list(watchlist.errors))
    candidates = collect_refs(watchlist, settings, result.errors)

    if warehouse is None:
        from evals.warehouse import Warehouse

        warehouse = Warehouse.from_settings(settings)
    records = warehouse.run_records(statuses=(*DONE_STATUSES, "failed"))
    max_attempts = spec.max_attempts or settings.checkpoint_max_attempts
    done, failures = _watermark(records, spec)
    for ref in candidates:
        key = (ref.model_id, ref.revision or "")
        if key in done:
            result.already_evaluated += 1
            continue
        failed = failures.get(key, [])
        if len(failed) >= max_attempts:
            result.exhausted.append(Exhausted(ref, len(failed), failed[-1].error))
        else:
            result.new.append(ref)
    log.info(
        "discovered %d new refs (%d evaluated, %d exhausted, %d errors)",
        len(result.new),
        result.already_evaluated,
        len(result.exhausted),
        len(result.errors),
    )
    return result


def collect_refs(watchlist: Watchlist, settings: Settings, errors: list[EntryError]) -> list[CheckpointRef]:
    """The pinned refs of every entry, deduplicated and sorted; failures are appended to ``errors``."""
    found: dict[CheckpointRef, CheckpointRef] = {}
    for entry in watchlist.entries:
        try:
            cls = get_source_class(entry.source)
            source = cls(settings, entry.options)
            refs = [source.resolve(entry.ref)] if entry.ref is not None else source.discover()
            errors.extend(EntryError(entry.label, problem) for problem in source.problems)
        except TransientError as exc:
            errors.append(EntryError(entry.label, f"temporarily unavailable: {exc}"))
            continue
        except EvalsError as exc:
            errors.append(EntryError(entry.label, str(exc)))
            continue
        for ref in refs:
            found.setdefault(ref, ref)
    return sorted(found.values(), key=lambda r: (r.source, r.model_id, r.revision or ""))


def _matches(record: RunRecord, spec: EvaluateSpec) -> bool:
    return all(
        wanted is None or getattr(record, name) == wanted
        for name, wanted in (
            ("suite", spec.suite),
            ("suite_version", spec.suite_version),
            ("scenario", spec.scenario),
            ("scenario_version", spec.scenario_version),
        )
    )


def _watermark(
    records: Iterable[RunRecord], spec: EvaluateSpec
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], list[RunRecord]]]:
    done: set[tuple[str, str]] = set()
    failures: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        if not _matches(record, spec):
            continue
        key = (record.model_id, record.revision)
        if record.status in DONE_STATUSES:
            done.add(key)
        elif record.status == "failed":
            failures.setdefault(key, []).append(record)
    return done, failures
