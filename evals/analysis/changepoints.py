"""Change points across nights: Apache Otava's E-divisive on each model's nightly series, the change_points table.

Detector: Apache Otava (formerly Hunter, MongoDB's CI change detection): E-divisive splits a series where the
distributions before and after differ most, and keeps a split only when Student's t-test between the two
segments gives p < ``max_pvalue`` and the relative change exceeds ``min_magnitude``. Otava is used through its
Python API (``otava.analysis.compute_change_points``: pure numpy/scipy over a list of floats); it is installed
without its CLI's dependencies (see the Makefile). ``ruptures`` was the alternative; it returns indices only, no
magnitude nor significance, which the table needs.

Series per (model, suite, scenario), one value per night (its published run): headline accuracy; per load level
P95 TTFT, P95 E2E and output tokens/s; cost per 1M output tokens at the SLO (see :mod:`evals.analysis.ranking`).
A change on a series whose revision did not move across the change is a **serving-stack change**; the row says
what differed in the runs' provenance (versions, hardware, backend, dtype, config hash).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from evals.warehouse import Warehouse

log = logging.getLogger(__name__)

METHOD = "otava-e-divisive"
PROVENANCE_FIELDS = ("versions", "hardware", "backend", "dtype", "config_hash", "suite_version", "scenario_version")


@dataclass(frozen=True)
class ChangePointOptions:
    """Detector settings: Otava's window and significance, and the smallest relative change worth a row."""

    window_len: int = 50
    max_pvalue: float = 0.001
    min_magnitude: float = 0.05
    min_nights: int = 6  # a shorter series cannot show a significant split


@dataclass(frozen=True)
class Change:
    """A change point of one series: ``index`` is the first night after the change."""

    index: int
    n_before: int
    n_after: int
    mean_before: float
    mean_after: float
    p_value: float

    @property
    def relative_change(self) -> float | None:
        return self.mean_after / self.mean_before - 1.0 if self.mean_before != 0 else None


def detect(values: Sequence[float], options: ChangePointOptions | None = None) -> list[Change]:
    """Change points of one series (nights in order). Pure: a list of floats in, changes out."""
    from otava.analysis import compute_change_points

    options = options or ChangePointOptions()
    series = [float(v) for v in values]
    if len(series) < options.min_nights:
        return []
    points, _ = compute_change_points(
        series, window_len=options.window_len, max_pvalue=options.max_pvalue, min_magnitude=options.min_magnitude
    )
    indices = [int(p.index) for p in points]
    bounds = [0, *indices, len(series)]
    return [
        Change(
            index=index,
            n_before=index - bounds[i],
            n_after=bounds[i + 2] - index,
            mean_before=float(point.stats.mean_1),
            mean_after=float(point.stats.mean_2),
            p_value=float(point.stats.pvalue),
        )
        for i, (index, point) in enumerate(zip(indices, points, strict=True))
    ]


# ---------------------------------------------------------------------------------------------- series


def model_series(
    con: duckdb.DuckDBPyConnection, model_id: str, suite: str | None, scenario: str | None, *, min_goodput: float
) -> tuple[list[dict[str, Any]], dict[str, list[float | None]]]:
    """(runs of the model's (suite, scenario) in night order, series name -> one value per run, None if absent)."""
    from evals.analysis.ranking import capacity, headline_accuracy, reference_level, slo_levels

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
        for change in detect([float(values[i]) for i in nights], options):  # type: ignore[arg-type]
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
        written = 0
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
            record = warehouse.find_run(latest["run_id"], area="published", eval_date=latest["eval_date"])
            if record is None:
                continue  # re-published or deleted since the snapshot; the next analysis sees it
            frame: Any = rows if rows else arrow_schema("change_points").empty_table()
            written += warehouse.write_table(record, "change_points", frame)
            for row in rows:
                found[row["cause"]] = found.get(row["cause"], 0) + 1
    finally:
        con.close()
    summary = {"series_groups": len(groups), "change_points": written, "by_cause": found}
    log.info("change points: %s", summary)
    return summary


def latest_change_points(
    con: duckdb.DuckDBPyConnection, model_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
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
