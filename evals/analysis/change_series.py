"""The warehouse's change points: each model's nightly series, its ``change_points`` rows, written on its latest run.

Detection itself (Otava's split, our merge, the statuses) is :mod:`evals.analysis.changepoints`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evals.analysis.changepoints import METHOD, PROVENANCE_FIELDS, ChangePointOptions, detect, scale_of

if TYPE_CHECKING:
    import datetime as dt

    from evals.warehouse import Warehouse
    from evals.warehouse.views import ReadModel

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- series


def model_series(
    con: ReadModel, model_id: str, suite: str | None, scenario: str | None, *, min_goodput: float
) -> tuple[list[dict[str, Any]], dict[str, list[float | None]]]:
    """(runs of the model's (suite, scenario) in night order, series name -> one value per run, None if absent)."""
    from evals.analysis.measures import capacity, reference_level
    from evals.analysis.ranking import headline_accuracy, slo_levels

    cursor = con.execute(
        f"""select run_id, model_id, revision, eval_date, logical_date, suite, scenario, config,
                   {", ".join(PROVENANCE_FIELDS)}
            from runs where model_id = $model and suite is not distinct from $suite
                        and scenario is not distinct from $scenario
            order by logical_date, finished_at nulls first""",
        {"model": model_id, "suite": suite, "scenario": scenario},
    )
    names = [d[0] for d in cursor.description]
    runs = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    series: dict[str, list[float | None]] = {}

    def put(name: str, night: int, value: float | None) -> None:
        series.setdefault(name, [None] * len(runs))[night] = value

    for night, run in enumerate(runs):
        if suite is not None:
            put("accuracy:headline", night, headline_accuracy(con, run, 0.05)[0])
        if scenario is not None:
            levels = slo_levels(con, run)
            for (load_type, load), level in sorted(levels.items()):
                suffix = f"@{load_type}={load:g}"
                put(f"latency:ttft_p95_ms{suffix}", night, level.ttft_p95_ms)
                put(f"latency:e2e_p95_ms{suffix}", night, level.e2e_p95_ms)
                put(f"latency:output_tokens_per_s{suffix}", night, level.output_tokens_per_s)
            ref = reference_level(run.get("config"), levels)
            cap = capacity(levels.values(), ref[0], min_goodput) if ref else None
            put("cost:usd_per_1m_at_slo", night, cap.usd_per_1m_at_slo if cap else None)
    return runs, series


def rows_for(
    runs: Sequence[Mapping[str, Any]], series: Mapping[str, Sequence[float | None]], options: ChangePointOptions
) -> list[dict[str, Any]]:
    """``change_points`` rows of one (model, suite, scenario), attached to its latest run (the analysed state)."""
    if not runs:
        return []
    latest = runs[-1]
    out = []
    for name, values in sorted(series.items()):
        nights = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
        found = detect([float(values[i]) for i in nights], options, scale=scale_of(name))  # type: ignore[arg-type]
        for change in found:
            after, before = runs[nights[change.index]], runs[nights[change.index - 1]]
            moved = after["revision"] != before["revision"]
            out.append(
                {
                    "run_id": latest["run_id"],
                    "model_id": latest["model_id"],
                    "revision": latest["revision"],
                    "eval_date": latest["eval_date"],
                    "suite": latest["suite"],
                    "scenario": latest["scenario"],
                    "series": name,
                    "method": METHOD,
                    "night": after["eval_date"],
                    "run_id_after": after["run_id"],
                    "run_id_before": before["run_id"],
                    "revision_before": before["revision"],
                    "revision_after": after["revision"],
                    "n_before": change.n_before,
                    "n_after": change.n_after,
                    "mean_before": change.mean_before,
                    "mean_after": change.mean_after,
                    "relative_change": change.relative_change,
                    "p_value": change.p_value,
                    "noise_sd": change.noise_sd,
                    "status": change.status,
                    "revision_moved": moved,
                    "cause": "revision" if moved else "serving_stack",
                    "provenance_diff": json.dumps(provenance_diff(before, after), sort_keys=True, default=str),
                }
            )
    return out


def provenance_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} of what differs in two runs' provenance (struct fields flattened: versions.vllm)."""
    out: dict[str, list[Any]] = {}
    for name in PROVENANCE_FIELDS:
        a, b = before.get(name), after.get(name)
        if isinstance(a, Mapping) or isinstance(b, Mapping):
            a, b = dict(a or {}), dict(b or {})
            for key in sorted(a.keys() | b.keys()):
                if a.get(key) != b.get(key):
                    out[f"{name}.{key}"] = [a.get(key), b.get(key)]
        elif a != b:
            out[name] = [a, b]
    return out


# ---------------------------------------------------------------------------------------------- the analytics step


def detect_and_store(
    *, warehouse: Warehouse | None = None, options: ChangePointOptions | None = None
) -> dict[str, Any]:
    """Analyse every (model, suite, scenario) series and write its change points onto its latest run.

    Each group's latest run carries the complete current set, so a rerun replaces it and
    :func:`latest_change_points` reads one run per group; a group with none is written only to clear rows an
    earlier analysis left on that run. Returns a JSON-safe summary (fit for XCom).
    """
    from evals.schemas import arrow_schema
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    warehouse = warehouse or Warehouse.from_settings()
    options = options or ChangePointOptions()
    con = connect(warehouse)
    try:
        groups = con.execute("select distinct model_id, suite, scenario from runs order by all").fetchall()
        found: dict[str, int] = {}
        found_rows: dict[str, list[dict[str, Any]]] = {}
        dates: set[dt.date] = set()
        for model_id, suite, scenario in groups:
            runs, series = model_series(
                con, model_id, suite, scenario, min_goodput=warehouse.settings.leaderboard_min_goodput
            )
            rows = rows_for(runs, series, options)
            latest = runs[-1]
            stored = con.execute(
                "select count(*) from change_points where run_id = $run", {"run": latest["run_id"]}
            ).fetchone()
            if not rows and not (stored and stored[0]):
                continue  # nothing found and nothing to replace: no write
            found_rows[latest["run_id"]] = rows
            dates.add(latest["eval_date"])
        # One commit for every group; a run re-published or deleted since the snapshot is left for the next analysis.
        frames = {run: rows or arrow_schema("change_points").empty_table() for run, rows in found_rows.items()}
        written = warehouse.write_derived("change_points", frames, eval_dates=dates, skip_unpublished=True)
        for row in (row for run_id in written for row in found_rows[run_id]):
            found[row["cause"]] = found.get(row["cause"], 0) + 1
    finally:
        con.close()
    summary = {"series_groups": len(groups), "change_points": sum(written.values()), "by_cause": found}
    log.info("change points: %s", summary)
    return summary


def latest_change_points(con: ReadModel, model_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The change points of each (model, suite, scenario)'s latest run, newest night first (for report and UI)."""
    cursor = con.execute(
        """with latest as (
               select run_id from runs
               where $models is null or list_contains($models, model_id)
               qualify row_number() over (partition by model_id, suite, scenario
                                          order by logical_date desc, finished_at desc nulls last) = 1
           )
           select * exclude (schema_version) from change_points where run_id in (select run_id from latest)
           order by night desc, model_id, series""",
        {"models": list(model_ids) if model_ids is not None else None},
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
