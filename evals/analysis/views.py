"""DuckDB views over the warehouse: committed runs only, per table, plus the leaderboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evals.schemas import TABLES

if TYPE_CHECKING:
    import duckdb

    from evals.warehouse import Warehouse

_STATUS_ORDER = "case status when 'published' then 0 when 'quarantined' then 1 else 2 end"

# Headline accuracy of a run: mean over its top-level tasks of each task's first available metric in this
# order (higher-is-better metrics only), so MC tasks (acc) and generation tasks (exact_match) both count.
HEADLINE_METRICS = ("acc", "exact_match", "acc_norm", "f1", "bleu", "rouge1")

LEADERBOARD_SQL = """
create or replace view leaderboard as
with acc_runs as (
    select * from runs where suite is not null and run_id in (select run_id from accuracy)
    qualify row_number() over (partition by model_id order by logical_date desc, finished_at desc nulls last) = 1
), headline as (
    select a.run_id, a.task, a.value
    from accuracy a join acc_runs r using (run_id)
    where a.task_group is null and coalesce(a.higher_is_better, true)
    qualify row_number() over (
        partition by a.run_id, a.task
        order by coalesce(list_position({metrics}, a.metric), 99), a.metric, a.filter) = 1
), acc as (
    select r.model_id, r.revision, r.eval_date, r.suite, avg(h.value) as accuracy, count(*) as n_tasks
    from headline h join acc_runs r using (run_id)
    group by all
), lat_runs as (
    select * from runs where scenario is not null and run_id in (select run_id from latency)
    qualify row_number() over (partition by model_id order by logical_date desc, finished_at desc nulls last) = 1
), lat as (
    -- The headline load level: the most throughput among levels meeting the SLO for most requests; if none
    -- does, the lightest load (what a single user would see).
    select r.model_id, r.revision, r.eval_date, l.scenario, l.load_type, l.load, l.ttft_p95_ms, l.e2e_p95_ms,
           l.output_tokens_per_s, l.goodput, l.usd_per_1m_output_tokens
    from latency l join lat_runs r using (run_id)
    qualify row_number() over (
        partition by l.run_id
        order by (coalesce(l.goodput, 0) >= {min_goodput}) desc,
                 case when coalesce(l.goodput, 0) >= {min_goodput} then l.output_tokens_per_s end desc nulls last,
                 l.load) = 1
)
select coalesce(acc.model_id, lat.model_id) as model_id,
       coalesce(acc.revision, lat.revision) as revision,
       greatest(acc.eval_date, lat.eval_date) as eval_date,
       acc.suite, acc.accuracy, acc.n_tasks,
       lat.scenario, lat.load_type, lat.load,
       lat.ttft_p95_ms, lat.e2e_p95_ms, lat.output_tokens_per_s, lat.goodput, lat.usd_per_1m_output_tokens
from acc full outer join lat on acc.model_id = lat.model_id
order by accuracy desc nulls last, ttft_p95_ms asc nulls last, model_id
"""


def connect(warehouse: Warehouse | None = None, *, min_goodput: float | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose views read a snapshot of the warehouse taken now.

    Views: ``runs``, ``accuracy``, ``latency``, ``latency_samples``, ``comparisons`` (published runs only),
    ``all_runs`` (every run record: published, quarantined, failed), ``quarantined_<table>`` (quarantined data)
    and ``leaderboard``. DuckDB scans pyarrow datasets, so the same code serves file:// and s3:// without httpfs.
    """
    import duckdb
    import pyarrow as pa

    from evals.warehouse import Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    if min_goodput is None:
        min_goodput = warehouse.settings.leaderboard_min_goodput
    con = duckdb.connect()
    for area in ("published", "quarantine"):
        for table in TABLES:
            per_run, compacted, overridden = warehouse.datasets(table, area=area)
            name = f"_{area}_{table}"
            con.register(f"{name}_files", per_run)
            con.register(f"{name}_compacted", compacted)
            con.register(f"{name}_overridden", pa.table({"run_id": pa.array(overridden, pa.string())}))
            # A per-run file wins over a compacted copy of the same run (see warehouse.compaction).
            con.execute(
                f"create view {name} as select * from {name}_files union all by name "
                f"select * from {name}_compacted where run_id not in (select run_id from {name}_overridden)"
            )
    con.execute(
        f"""create view all_runs as
        select * exclude (_rank) from (
            select *, row_number() over (partition by run_id order by {_STATUS_ORDER}) as _rank
            from (select * from _published_runs union all by name select * from _quarantine_runs)
        ) where _rank = 1"""
    )
    con.execute("create view runs as select * from all_runs where status = 'published'")
    con.execute("create view quarantined_runs as select * from all_runs where status = 'quarantined'")
    for table in TABLES:
        if table == "runs":
            continue
        con.execute(
            f"create view {table} as select * from _published_{table} where run_id in (select run_id from runs)"
        )
        con.execute(
            f"create view quarantined_{table} as select * from _quarantine_{table} "
            f"where run_id in (select run_id from quarantined_runs)"
        )
    metrics = "[" + ", ".join(f"'{m}'" for m in HEADLINE_METRICS) + "]"
    con.execute(LEADERBOARD_SQL.format(metrics=metrics, min_goodput=float(min_goodput)))
    return con
