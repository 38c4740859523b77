"""What the Results page shows, read from a fresh DuckDB snapshot of the warehouse on every request."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evals.analysis.views import HEADLINE_METRICS

if TYPE_CHECKING:
    import duckdb

LEADERBOARD_COLUMNS = (
    "model_id",
    "revision",
    "eval_date",
    "suite",
    "accuracy",
    "n_tasks",
    "scenario",
    "load_type",
    "load",
    "ttft_p95_ms",
    "e2e_p95_ms",
    "output_tokens_per_s",
    "goodput",
    "usd_per_1m_output_tokens",
)

TREND_COLUMNS = (
    "model_id",
    "eval_date",
    "revision",
    "accuracy",
    "ttft_p95_ms",
    "e2e_p95_ms",
    "output_tokens_per_s",
    "usd_per_1m_output_tokens",
)

# One point per (model, eval date, revision), using the leaderboard's definitions per run: headline accuracy is
# the mean over top-level tasks of each task's preferred metric; latency and cost come from the headline load
# level (the most throughput among levels meeting the goodput bar, else the lightest load). A night with
# separate accuracy and latency runs of the same revision merges into one point; when a revision ran more than
# once that day, its latest run counts (as on the leaderboard; arg_max skips runs without the metric).
TRENDS_SQL = """
with headline as (
    select run_id, task, value from accuracy
    where task_group is null and coalesce(higher_is_better, true)
    qualify row_number() over (
        partition by run_id, task
        order by coalesce(list_position({metrics}, metric), 99), metric, filter) = 1
), acc as (
    select run_id, avg(value) as accuracy from headline group by run_id
), lat as (
    select run_id, ttft_p95_ms, e2e_p95_ms, output_tokens_per_s, usd_per_1m_output_tokens from latency
    qualify row_number() over (
        partition by run_id
        order by (coalesce(goodput, 0) >= $min_goodput) desc,
                 case when coalesce(goodput, 0) >= $min_goodput then output_tokens_per_s end desc nulls last,
                 load) = 1
)
select r.model_id, r.eval_date, r.revision,
       arg_max(acc.accuracy, r.logical_date), arg_max(lat.ttft_p95_ms, r.logical_date),
       arg_max(lat.e2e_p95_ms, r.logical_date), arg_max(lat.output_tokens_per_s, r.logical_date),
       arg_max(lat.usd_per_1m_output_tokens, r.logical_date)
from runs r left join acc using (run_id) left join lat using (run_id)
where ($model_id is null or r.model_id = $model_id)
group by r.model_id, r.eval_date, r.revision
having count(acc.accuracy) > 0 or count(lat.run_id) > 0
order by r.model_id, r.eval_date, min(r.logical_date), r.revision
"""


@dataclass(frozen=True)
class Results:
    """One consistent read of the warehouse: the leaderboard and each model's points over time."""

    warehouse: str
    leaderboard: list[dict[str, Any]]
    trends: dict[str, list[dict[str, Any]]]


def read_results(model_id: str | None = None) -> Results:
    """Open the warehouse named by the settings now (not at import) and read everything the page shows."""
    from evals.analysis.views import connect
    from evals.warehouse import Warehouse

    warehouse = Warehouse.from_settings()
    con = connect(warehouse)
    try:
        return Results(
            warehouse=warehouse.uri,
            leaderboard=leaderboard(con),
            trends=trends(con, model_id, min_goodput=warehouse.settings.leaderboard_min_goodput),
        )
    finally:
        con.close()


def leaderboard(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(f"select {', '.join(LEADERBOARD_COLUMNS)} from leaderboard").fetchall()
    return [_record(LEADERBOARD_COLUMNS, row) for row in rows]


def trends(
    con: duckdb.DuckDBPyConnection, model_id: str | None = None, *, min_goodput: float
) -> dict[str, list[dict[str, Any]]]:
    metrics = "[" + ", ".join(f"'{m}'" for m in HEADLINE_METRICS) + "]"
    rows = con.execute(
        TRENDS_SQL.format(metrics=metrics), {"model_id": model_id, "min_goodput": float(min_goodput)}
    ).fetchall()
    series: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        point = _record(TREND_COLUMNS, row)
        series.setdefault(point.pop("model_id"), []).append(point)
    return series


def _record(columns: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    return {name: _plain(value) for name, value in zip(columns, row, strict=True)}


def _plain(value: Any) -> Any:
    """Values that survive strict JSON: no NaN or inf (XCom and browsers both reject them), dates as ISO text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
