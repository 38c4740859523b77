"""The leaderboard, one table: the latest published run per (model, suite, scenario), ranked with the SLO in mind.

``select * from leaderboard`` (``evals query``, ``evals export --table leaderboard``, Trino/Spark users of an
export), ``evals leaderboard``, the report and the Results page all show the rows of :func:`leaderboard`, with the
columns of :data:`COLUMNS`: each number is defined once in :mod:`evals.analysis.measures`.

A model's nightly run never replaces its smoke number: each (suite, scenario) is its own board. Latency columns
come from stable operating points, the scenario's reference level and the capacity level — never from a level
picked by the night's throughput.

Beside them, on every row: the guardrail score of the same model and revision (its latest published run of the
``guardrails`` suite, a run of its own), how predictable the run's service was (P99/P50 TTFT, error rate) and how
much the revision's P95 TTFT and tail ratio moved over its last nights (coefficient of variation).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from evals.analysis import measures
from evals.analysis.ranking import (
    RANK_BY,
    accuracy_rows_by_run,
    headline_of,
    headline_scores_by_run,
    headline_tasks_of,
    rank,
    rank_draws,
    slo_levels_by_run,
    with_rank_intervals,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from evals.warehouse import Warehouse
    from evals.warehouse.views import ReadModel

# (column, Arrow type name) in order: the leaderboard's columns wherever it is shown.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "int64"),
    ("rank_low", "int64"),  # the 95 % interval of the rank within its board (bootstrap over questions, requests)
    ("rank_high", "int64"),
    ("suite", "string"),
    ("scenario", "string"),
    ("model_id", "string"),
    ("revision", "string"),
    ("eval_date", "date32"),
    ("run_id", "string"),
    ("accuracy", "float64"),
    ("n_tasks", "int64"),
    ("accuracy_mde", "float64"),
    ("reference_load_type", "string"),
    ("reference_load", "float64"),
    ("ttft_p95_ms", "float64"),
    ("e2e_p95_ms", "float64"),
    ("capacity", "float64"),
    ("capacity_status", "string"),  # held | indeterminate (goodput's Wilson CI straddles the floor) | none
    ("goodput_at_capacity", "float64"),
    ("goodput_ci_low", "float64"),
    ("goodput_ci_high", "float64"),
    ("n_requests_at_capacity", "int64"),
    ("tokens_per_s_at_capacity", "float64"),
    ("slo_tokens_per_s", "float64"),
    ("usd_per_1m_at_slo", "float64"),
    ("capacity_ttft_p95_ms", "float64"),
    ("capacity_e2e_p95_ms", "float64"),
    ("slo_accuracy", "float64"),
    ("ttft_tail_ratio", "float64"),  # P99/P50 TTFT at the reference level
    ("error_rate", "float64"),  # failures other than timeouts over every request of the run's load levels
    ("error_rate_ci_low", "float64"),  # Wilson 95 %
    ("error_rate_ci_high", "float64"),
    ("ttft_p95_cv", "float64"),  # over the revision's last CV_NIGHTS published nights, at the reference level
    ("ttft_tail_ratio_cv", "float64"),
    ("cv_nights", "int64"),  # nights with a P95 TTFT at that level in that window
    ("guardrail_score", "float64"),  # measures.guardrail_score of the latest guardrails run of model + revision
    ("guardrail_score_se", "float64"),
    ("guardrail_run_id", "string"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
_BOARD_SCHEMA = "_leaderboard"  # the views over the latest runs' files only


def leaderboard(
    con: ReadModel,
    *,
    rank_by: str = "accuracy",
    suite: str | None = None,
    scenario: str | None = None,
    min_goodput: float = 0.9,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """The latest published run per (model, suite, scenario), ranked within each (suite, scenario) by ``rank_by``.

    ``rank`` is 1 for the best; runs without the ranked value come last, unranked. ``rank_low`` / ``rank_high``:
    the 95 % interval of the rank from seeded bootstrap draws (:mod:`evals.analysis.uncertainty`; null when ranked
    by capacity, whose uncertainty is ``capacity_status``). Rows have :data:`COLUMNS`.
    """
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")
    runs = _latest_runs(con, suite, scenario)
    guards = _guardrail_runs(con, runs)
    nights = _night_runs(con, runs)
    # Only the files of the latest runs, their guardrail runs and their last nights are opened (a long history has
    # thousands of runs per table).
    scoped = [r["run_id"] for r in (*runs, *guards.values())] + [r["run_id"] for rs in nights.values() for r in rs]
    schema = con.scope_runs(scoped, schema=_BOARD_SCHEMA) if runs else "main"
    # Four reads for the whole board (accuracy rows, latency levels + samples, per-question scores, the nights'
    # reference levels), not per run.
    with_accuracy = {r["run_id"]: r for r in (*runs, *guards.values()) if r["suite"] is not None}
    accuracy = accuracy_rows_by_run(con, list(with_accuracy.values()), schema=schema)
    levels = slo_levels_by_run(con, [r for r in runs if r["scenario"] is not None], schema=schema)
    series = _night_levels(con, nights, schema=schema)
    wants_draws = rank_by != "capacity"
    scores = headline_scores_by_run(con, runs, accuracy, schema=schema) if wants_draws else {}
    rows, draws = [], {}
    for run in runs:
        run_id = str(run["run_id"])
        acc_rows = accuracy.get(run_id, {})
        accuracy_value, n_tasks, mde = headline_of(acc_rows, alpha)
        point = measures.operating_point(levels.get(run_id, {}), run.get("config"), min_goodput)
        rows.append(
            {
                "suite": run["suite"],
                "scenario": run["scenario"],
                "model_id": run["model_id"],
                "revision": run["revision"],
                "eval_date": run["eval_date"],
                "run_id": run["run_id"],
                "accuracy": accuracy_value,
                "n_tasks": n_tasks,
                "accuracy_mde": mde,
                **point,
                "slo_accuracy": measures.slo_accuracy(accuracy_value, point["goodput_at_capacity"]),
                **_across_nights(nights.get(run_id, []), series, point),
                **_guardrail(guards.get((run["model_id"], run["revision"])), accuracy),
            }
        )
        tasks = (
            headline_tasks_of(acc_rows, scores.get(run_id, {})) if accuracy_value is not None and wants_draws else []
        )
        draws[run["run_id"]] = rank_draws(rows[-1], tasks, rank_by)
    ranked = with_rank_intervals(rank(rows, rank_by), draws, rank_by)
    return [{name: row[name] for name in COLUMN_NAMES} for row in ranked]


def leaderboard_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The rows as an Arrow table with :data:`COLUMNS` (also when there are none)."""
    import pyarrow as pa

    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def connect(warehouse: Warehouse | None = None, *, as_of: dt.datetime | None = None) -> ReadModel:
    """The warehouse's read model (:func:`evals.warehouse.views.connect`) with the ``leaderboard`` relation: the
    rows of :func:`leaderboard` (ranked by accuracy, the warehouse's SLO floor and alpha), computed on first use."""
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect as connect_views

    warehouse = warehouse or Warehouse.from_settings()
    settings = warehouse.settings

    def board(model: ReadModel) -> pa.Table:
        rows = leaderboard(model, min_goodput=settings.leaderboard_min_goodput, alpha=settings.compare_alpha)
        return leaderboard_table(rows)

    return connect_views(warehouse, as_of=as_of, derived={"leaderboard": board})


def _latest_runs(con: ReadModel, suite: str | None, scenario: str | None) -> list[dict[str, Any]]:
    cursor = con.execute(
        """select run_id, model_id, revision, eval_date, logical_date, suite, scenario, config from runs
           where ($suite is null or suite = $suite) and ($scenario is null or scenario = $scenario)
           qualify row_number() over (partition by model_id, suite, scenario
                                      order by logical_date desc, finished_at desc nulls last) = 1
           order by suite, scenario, model_id""",
        {"suite": suite, "scenario": scenario},
    )
    return _records(cursor)


def _guardrail_runs(con: ReadModel, runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(model, revision) -> the latest published run of the guardrail suite of that model and revision."""
    if not runs:
        return {}
    cursor = con.execute(
        """select run_id, model_id, revision, eval_date, logical_date, suite, scenario, config from runs
           where suite = $suite and list_contains($models, model_id)
           qualify row_number() over (partition by model_id, revision
                                      order by logical_date desc, finished_at desc nulls last) = 1""",
        {"suite": measures.GUARDRAIL_SUITE, "models": sorted({str(r["model_id"]) for r in runs})},
    )
    return {(r["model_id"], r["revision"]): r for r in _records(cursor)}


def _guardrail(run: dict[str, Any] | None, accuracy: dict[str, Any]) -> dict[str, Any]:
    score = measures.guardrail_headline(accuracy.get(str(run["run_id"]), {})) if run is not None else None
    if run is None or score is None:
        return dict.fromkeys(("guardrail_score", "guardrail_score_se", "guardrail_run_id"))
    return {"guardrail_score": score.value, "guardrail_score_se": score.se, "guardrail_run_id": run["run_id"]}


def _night_runs(con: ReadModel, runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per latest run with a scenario: the published runs of its model, revision and scenario up to it, one per
    night (logical date; the latest of a night), its last ``measures.CV_NIGHTS``, oldest first."""
    latest = [r for r in runs if r["scenario"] is not None]
    if not latest:
        return {}
    cursor = con.execute(
        """select run_id, model_id, revision, scenario, eval_date, logical_date from runs
           where scenario is not null and list_contains($models, model_id) and list_contains($revisions, revision)
           qualify row_number() over (partition by model_id, revision, scenario, logical_date
                                      order by finished_at desc nulls last) = 1
           order by logical_date""",
        {
            "models": sorted({str(r["model_id"]) for r in latest}),
            "revisions": sorted({str(r["revision"]) for r in latest}),
        },
    )
    history: dict[tuple[Any, Any, Any], list[dict[str, Any]]] = {}
    for h in _records(cursor):
        history.setdefault((h["model_id"], h["revision"], h["scenario"]), []).append(h)
    out = {}
    for run in latest:
        mine = history.get((run["model_id"], run["revision"], run["scenario"]), [])
        out[str(run["run_id"])] = [h for h in mine if h["logical_date"] <= run["logical_date"]][-measures.CV_NIGHTS :]
    return out


def _night_levels(
    con: ReadModel, nights: dict[str, list[dict[str, Any]]], *, schema: str
) -> dict[tuple[str, str, float], tuple[float | None, float | None]]:
    """(run_id, load_type, load) -> (P95 TTFT, P99/P50 TTFT) of the nights' load levels (one query)."""
    runs = list({str(r["run_id"]): r for rs in nights.values() for r in rs}.values())
    if not runs:
        return {}
    cursor = con.execute(
        f"""select run_id, load_type, load, ttft_p95_ms, ttft_tail_ratio from {schema}.latency
            where list_contains($runs, run_id) and list_contains($days::DATE[], eval_date) and input_tokens is null""",
        {"runs": [str(r["run_id"]) for r in runs], "days": sorted({r["eval_date"] for r in runs})},
    )
    return {(str(run_id), kind, float(load)): (p95, tail) for run_id, kind, load, p95, tail in cursor.fetchall()}


def _across_nights(
    nights: list[dict[str, Any]],
    series: dict[tuple[str, str, float], tuple[float | None, float | None]],
    point: dict[str, Any],
) -> dict[str, Any]:
    """The coefficient of variation of P95 TTFT and of the tail ratio at the run's reference level, over its nights."""
    kind, load = point["reference_load_type"], point["reference_load"]
    if kind is None:
        return dict.fromkeys(("ttft_p95_cv", "ttft_tail_ratio_cv", "cv_nights"))
    found = [series[key] for key in ((str(n["run_id"]), kind, float(load)) for n in nights) if key in series]
    p95 = [v for v, _ in found if v is not None]
    return {
        "ttft_p95_cv": measures.night_cv(p95),
        "ttft_tail_ratio_cv": measures.night_cv([t for _, t in found]),
        "cv_nights": len(p95),
    }


def _records(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
