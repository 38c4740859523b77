"""What a DAG run evaluates: the trigger's options, the watch-list's new checkpoints, typed-in entries pinned."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError, EvalsError

if TYPE_CHECKING:
    from evals.checkpoints import CheckpointRef

log = logging.getLogger(__name__)
progress = logging.getLogger("evals.progress")  # one line per step: the demo and the Airflow log show these

NONE = "none"


@dataclass(frozen=True)
class Options:
    """What to run on each checkpoint; every field is JSON-safe (it rides in XCom)."""

    suite: str | None = "smoke"
    scenario: str | None = "smoke"
    limit: int | None = None
    backend: str = "auto"
    endpoint: str | None = None
    # Resolved once, at plan time, from the suite/scenario definitions: every later step keys the run with these.
    suite_version: str | None = None
    scenario_version: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Options:
        def chosen(name: str) -> str | None:
            value = params.get(name, getattr(cls, name))
            return None if value in (None, "", NONE) else str(value)

        options = cls(
            suite=chosen("suite"),
            scenario=chosen("scenario"),
            limit=int(params["limit"]) if params.get("limit") is not None else None,
            backend=str(params.get("backend") or "auto"),
            endpoint=params.get("endpoint") or None,
        )
        if options.suite is None and options.scenario is None:
            raise ConfigError("nothing to run: both suite and scenario are 'none'")
        # Loading the definitions also refuses unknown names before any checkpoint is touched.
        suite_version = scenario_version = None
        if options.suite:
            from evals.accuracy.suites import load_suite

            suite_version = load_suite(options.suite).version
        if options.scenario:
            from evals.latency.scenario import load_scenario
            from evals.settings import get_settings

            scenario_version = load_scenario(options.scenario, get_settings().latency_scenario_dir)[0].version
        return replace(options, suite_version=suite_version, scenario_version=scenario_version)


@dataclass(frozen=True)
class PlanItem:
    """One checkpoint of a DAG run and what to run on it. A refused entry (bad ref, a watch-list entry not looked
    at) has no ``ref`` and says why in ``error``: it fails its own tasks and the summary, never the others."""

    options: Options
    ref: CheckpointRef | None = None
    entry: str | None = None  # what was asked for, as the user wrote it (refused entries)
    error: str | None = None
    path: str | None = None  # where the checkpoint was materialized (set by the materialize step)

    @property
    def name(self) -> str:
        return str(self.ref) if self.ref is not None else str(self.entry)

    def to_xcom(self) -> dict[str, Any]:
        """The item as strict JSON (what XCom carries); :meth:`from_xcom` reads it back."""
        return {
            "ref": self.ref.to_dict() if self.ref is not None else None,
            "options": asdict(self.options),
            "entry": self.entry,
            "error": self.error,
            "path": self.path,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any] | PlanItem) -> PlanItem:
        if isinstance(data, PlanItem):
            return data
        from evals.checkpoints import CheckpointRef

        return cls(
            options=Options(**data["options"]),
            ref=CheckpointRef.from_dict(data["ref"]) if data.get("ref") else None,
            entry=data.get("entry"),
            error=data.get("error"),
            path=data.get("path"),
        )


def plan_nightly(params: Mapping[str, Any], context: Mapping[str, Any]) -> list[PlanItem]:
    """The watch-list's checkpoints still to evaluate (or all of them with ``reevaluate``), one item each."""
    from evals.checkpoints import discover
    from evals.checkpoints.discover import collect_refs
    from evals.checkpoints.watchlist import load_watchlist
    from evals.settings import get_settings
    from evals.warehouse import Warehouse

    options = Options.from_params(params)
    settings = get_settings()
    watchlist = load_watchlist(params.get("watchlist") or settings.watchlist)
    warehouse = Warehouse.from_settings(settings)
    found = discover(
        watchlist,
        settings=settings,
        warehouse=warehouse,
        suite=options.suite,
        suite_version=options.suite_version,
        scenario=options.scenario,
        scenario_version=options.scenario_version,
    )
    for error in found.errors:
        log.error("watch-list entry not looked at: %s", error.to_dict())
    for exhausted in found.exhausted:
        log.warning("not retried any more: %s", exhausted.to_dict())
    warehouse.record_discovery(dt.datetime.fromisoformat(context["logical_date"]).date(), found.night_summary())
    refs = found.new
    if params.get("reevaluate"):
        # A longitudinal canary: the same revisions again catch regressions of the serving stack itself.
        refs = collect_refs(watchlist, settings, [])
    refs = _unique(refs)
    progress.info("plan: %d checkpoint(s) to evaluate: %s", len(refs), ", ".join(map(short, refs)) or "-")
    items = [PlanItem(options, ref) for ref in refs]
    guardrails = params.get("guardrails")
    if guardrails not in (None, "", NONE):
        # The guardrail suite is its own run per checkpoint (no latency scenario): paired night to night and ranked
        # on its own board, never averaged into the accuracy headline.
        extra = Options.from_params({"suite": guardrails, "scenario": NONE, "limit": params.get("limit")})
        items += [PlanItem(extra, ref) for ref in refs]
    # A followed organisation that was not looked at (the Hub down past its retries, a bad entry) must not pass
    # as a quiet night: each failed entry is an item that fails its own tasks and the summary, like a refused
    # manual entry, while every discovered checkpoint is still evaluated and published.
    return items + [PlanItem(options, entry=f"watch-list {error.entry}", error=error.message) for error in found.errors]


def plan_manual(params: Mapping[str, Any], context: Mapping[str, Any]) -> list[PlanItem]:
    """The checkpoints typed in the trigger form (refs or local directories), each checked and pinned."""
    options = Options.from_params(params)
    entries = params.get("checkpoints") or []
    if not entries:
        raise ConfigError(
            "no checkpoints given: set 'checkpoints' to refs (hf:org/name@<40-hex sha>, package:smollm2) or local paths"
        )
    refs: list[CheckpointRef] = []
    items: list[PlanItem] = []
    for entry in entries:
        try:
            refs.append(resolve_checkpoint(str(entry)))
        except EvalsError as exc:
            # One bad entry must not stop the others: it fails its own mapped tasks and the summary.
            log.error("checkpoint %r refused: %s", entry, exc)
            items.append(PlanItem(options, entry=str(entry), error=str(exc)))
    items = [PlanItem(options, ref) for ref in _unique(refs)] + items
    progress.info("plan: %d checkpoint(s) to evaluate", len(items))
    return items


def _unique(refs: Sequence[CheckpointRef]) -> list[CheckpointRef]:
    """One item per (model, revision): two sources of the same revision would share a run id and its files."""
    seen: dict[tuple[str, str | None], CheckpointRef] = {}
    for ref in refs:
        key = (ref.model_id, ref.revision)
        if key in seen:
            log.warning("%s is the same checkpoint as %s: evaluated once", ref, seen[key])
            continue
        seen[key] = ref
    return list(seen.values())


def resolve_checkpoint(text: str) -> CheckpointRef:
    """A ref string (``source:model_id@revision``) or an existing local checkpoint directory, pinned."""
    from evals.checkpoints import CheckpointRef
    from evals.checkpoints.sources.local import LocalOptions, LocalSource
    from evals.settings import get_settings

    path = Path(text).expanduser()
    if ":" not in text or path.is_dir():
        if not path.is_dir():
            raise ConfigError(f"{text!r} is neither a ref (source:model_id@revision) nor a directory")
        directory = path.resolve()
        source = LocalSource(get_settings(), LocalOptions(path=directory.parent))
        for ref in source.discover():
            if ref.uri == directory.as_uri():
                return ref
        problems = "; ".join(source.problems) or "no config.json with weights found"
        raise ConfigError(f"{directory} is not a usable checkpoint directory: {problems}")
    ref = CheckpointRef.parse(text)
    if ref.revision is None:
        # Pin now: the run id, the watermark and the cache are all keyed by the exact revision.
        from evals.checkpoints.materialize import source_for

        settings = get_settings()
        ref = source_for(ref, settings).resolve(ref)
    return ref


def short(ref: CheckpointRef) -> str:
    """``model_id@<12 hex>``: what a person reads in progress lines."""
    return f"{ref.model_id}@{(ref.revision or '?')[:12]}"
