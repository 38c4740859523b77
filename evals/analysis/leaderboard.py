"""The leaderboard, one table: the latest published run per (model, suite, scenario), ranked with the SLO in mind.

``select * from leaderboard`` (``evals query``, ``evals export --table leaderboard``, Trino/Spark users of an
export), ``evals leaderboard``, the report and the Results page all show the rows of :func:`leaderboard`, with the
columns of :data:`COLUMNS`: each number is defined once in :mod:`evals.analysis.measures`.

A model's nightly run never replaces its smoke number: each (suite, scenario) is its own board. Latency columns
come from stable operating points, the scenario's reference level and the capacity level — never from a level
picked by the night's throughput.
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
    # Only the latest runs' files are opened (a long history has thousands of runs per table).
    schema = con.scope_runs([r["run_id"] for r in runs], schema=_BOARD_SCHEMA) if runs else "main"
    # Three reads for the whole board (accuracy rows, latency levels + samples, per-question scores), not per run.
    accuracy = accuracy_rows_by_run(con, [r for r in runs if r["suite"] is not None], schema=schema)
    levels = slo_levels_by_run(con, [r for r in runs if r["scenario"] is not None], schema=schema)
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
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
