"""What the report and the Results page plot, read from the warehouse's DuckDB views as JSON-safe records.

Every reader here goes through the named views of :func:`evals.warehouse.views.connect` (``runs``, ``all_runs``,
``accuracy``, ``latency``, ``latency_samples``, ``comparisons``, ``leaderboard``), never through files, and looks
columns up before using the optional ones: a view that gains a column (capacity at SLO, paired flips) shows it; a
table that does not exist yet (``change_points``) yields nothing instead of an error.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from evals.warehouse.views import ReadModel

Record = dict[str, Any]

Z95 = 1.959963984540054  # two-sided 95 % normal quantile

# The runs a trend draws: one point per (model, night, revision), from that revision's latest run of the night
# with accuracy rows and its latest with latency rows (a revision run twice that night counts once). The guardrail
# suite's runs are scored on their own (the leaderboard's guardrail score): an overview's accuracy leaves them out.
TREND_RUNS_SQL = """
select run_id, model_id, revision, eval_date, logical_date, suite, scenario, config,
       (($suite is null and suite != $guardrails) or suite = $suite) and suite is not null as with_accuracy,
       ($scenario is null or scenario = $scenario) and scenario is not null as with_latency
from runs
where ($models is null or list_contains($models, model_id))
  and ($days is null or eval_date > (select max(eval_date) from runs) - $days::integer)
order by model_id, eval_date, logical_date, finished_at nulls first
"""

# The latest published run with latency rows per (model, scenario): its levels, P95s, goodput and SLO.
CURVES_SQL = """
with latest as (
    select run_id, model_id, revision, eval_date, scenario from runs
    where run_id in (select distinct run_id from latency where input_tokens is null)
      and ($scenario is null or scenario = $scenario)
      and ($models is null or list_contains($models, model_id))
    qualify row_number() over (
        partition by model_id, scenario order by logical_date desc, finished_at desc nulls last) = 1
)
select r.model_id, r.revision, r.eval_date, r.scenario, l.run_id, l.load_type, l.load, l.n_requests, l.n_failed,
       l.ttft_p95_ms, l.e2e_p95_ms, l.output_tokens_per_s, l.goodput, l.slo, l.usd_per_1m_output_tokens
from latency l join latest r on l.run_id = r.run_id and l.eval_date = r.eval_date
where l.input_tokens is null
order by r.model_id, r.scenario, l.load_type, l.load
"""

NIGHT_SQL = """
select * from comparisons where eval_date = $night
order by verdict, model_id, kind, metric
"""


def _quantile_ci(values: str, n: str, q: float) -> str:
    """SQL: the distribution-free 95 % CI of the q-quantile, as the order statistics of ``values`` (a sorted list).

    The rank of the sample q-quantile is Binomial(n, q); its normal approximation gives the ranks
    ``n·q ∓ z·√(n·q·(1−q))`` (e.g. Conover, Practical Nonparametric Statistics, §3.2), clamped to the sample.
    """
    spread = f"{Z95} * sqrt({n} * {q} * {1 - q})"
    low = f"greatest(1, floor({n} * {q} - {spread}))::bigint"
    high = f"least({n}, ceil({n} * {q} + {spread}) + 1)::bigint"
    return f"{values}[{low}], {values}[{high}]"


def _sample_cis(con: ReadModel, levels: Iterable[tuple[str, Any, str, float]]) -> dict[tuple, Record]:
    """{(run_id, load_type, load): {n, ttft/e2e p95 CI}} from the ok requests in ``latency_samples``."""
    keys = sorted({(run_id, eval_date, load_type, float(load)) for run_id, eval_date, load_type, load in levels})
    if not keys:
        return {}
    import pyarrow as pa

    wanted = pa.table(
        {
            "run_id": [k[0] for k in keys],
            "eval_date": pa.array([_date(k[1]) for k in keys], pa.date32()),
            "load_type": [k[2] for k in keys],
            "load": [k[3] for k in keys],
        }
    )
    con.register("_wanted_levels", wanted)
    try:
        rows = con.execute(
            f"""
            with s as (
                select s.run_id, s.load_type, s.load, count(*) as n,
                       list_sort(list((s.first_token_s - s.sent_s) * 1000)) as ttft,
                       list_sort(list((s.finished_s - s.sent_s) * 1000)) as e2e
                from latency_samples s
                join _wanted_levels w on s.run_id = w.run_id and s.eval_date = w.eval_date
                     and s.load_type = w.load_type and s.load = w.load
                where s.eval_date in (select eval_date from _wanted_levels)
                  and s.ok and s.sent_s is not null and s.first_token_s is not null and s.finished_s is not null
                  and s.input_tokens is null
                group by all
            )
            select run_id, load_type, load, n, {_quantile_ci("ttft", "n", 0.95)}, {_quantile_ci("e2e", "n", 0.95)}
            from s
            """
        ).fetchall()
    finally:
        con.unregister("_wanted_levels")
    return {
        (run_id, load_type, float(load)): {
            "n_samples": n,
            "ttft_p95_ci": [_plain(t_lo), _plain(t_hi)],
            "e2e_p95_ci": [_plain(e_lo), _plain(e_hi)],
        }
        for run_id, load_type, load, n, t_lo, t_hi, e_lo, e_hi in rows
    }


# ---------------------------------------------------------------------------------------------- readers


def leaderboard(con: ReadModel, *, suite: str | None = None, scenario: str | None = None) -> list[Record]:
    """The leaderboard's rows (:func:`evals.analysis.leaderboard.leaderboard`, optionally one suite's and one
    scenario's board), JSON-safe."""
    from evals.analysis.leaderboard import leaderboard as ranked
    from evals.settings import get_settings

    settings = get_settings()
    rows = ranked(
        con,
        suite=suite,
        scenario=scenario,
        min_goodput=settings.leaderboard_min_goodput,
        alpha=settings.compare_alpha,
    )
    return [{key: _plain(value) for key, value in row.items()} for row in rows]


def trends(
    con: ReadModel,
    models: Sequence[str] | None = None,
    *,
    min_goodput: float,
    suite: str | None = None,
    scenario: str | None = None,
    with_cis: bool = True,
    days: int | None = None,
) -> dict[str, list[Record]]:
    """Per model, one point per (night, revision): headline accuracy (± 95 % CI), P95 TTFT/E2E at the reference
    level (± CI), tokens/s and cost per 1M output tokens at the SLO at the capacity level — the leaderboard's
    numbers (:mod:`evals.analysis.measures`), night by night.

    ``days`` keeps only the nights of the last that many days of the warehouse (what an overview needs; the CIs
    read the request samples of every point drawn).
    """
    from evals.analysis import measures
    from evals.analysis.ranking import accuracy_rows_by_run, slo_levels_by_run

    params = {"models": list(models) if models is not None else None, "suite": suite, "scenario": scenario}
    runs = _records(con.execute(TREND_RUNS_SQL, {**params, "days": days, "guardrails": measures.GUARDRAIL_SUITE}))
    accuracy = accuracy_rows_by_run(con, [r for r in runs if r["with_accuracy"]])
    levels = slo_levels_by_run(con, [r for r in runs if r["with_latency"]])
    points: dict[tuple[str, str, str], Record] = {}
    for run in runs:  # in night order: a later run of the same revision that night replaces an earlier one
        key = (run["model_id"], _date(run["eval_date"]).isoformat(), run["revision"])
        point = points.setdefault(key, {"eval_date": key[1], "revision": run["revision"], **_EMPTY_POINT})
        found = measures.headline(accuracy[run["run_id"]]) if run["run_id"] in accuracy else None
        if found is not None:
            point["accuracy"] = found.value
            point["accuracy_ci"] = (
                [found.value - Z95 * found.se, found.value + Z95 * found.se] if found.se is not None else None
            )
        if run["run_id"] in levels:
            op = measures.operating_point(levels[run["run_id"]], run["config"], min_goodput)
            ref = (op["reference_load_type"], op["reference_load"])
            at_ref = levels[run["run_id"]].get(ref) if ref[0] is not None else None
            point.update(
                ttft_p95_ms=op["ttft_p95_ms"],
                e2e_p95_ms=op["e2e_p95_ms"],
                output_tokens_per_s=op["tokens_per_s_at_capacity"],
                usd_per_1m_at_slo=op["usd_per_1m_at_slo"],
                load_type=ref[0],
                load=ref[1],
                _latency=(run["run_id"], run["eval_date"]) if at_ref is not None else None,
            )
    cis = (
        _sample_cis(
            con,
            [(p["_latency"][0], p["_latency"][1], p["load_type"], p["load"]) for p in points.values() if p["_latency"]],
        )
        if with_cis
        else {}
    )
    series: dict[str, list[Record]] = {}
    for (model_id, _, _), p in points.items():
        latency = p.pop("_latency")
        if p["accuracy"] is None and latency is None:
            continue
        ci = cis.get((latency[0], p["load_type"], p["load"]), {}) if latency else {}
        p["ttft_p95_ci"] = ci.get("ttft_p95_ci")
        p["e2e_p95_ci"] = ci.get("e2e_p95_ci")
        series.setdefault(model_id, []).append(p)
    return series


_EMPTY_POINT: Record = {
    "accuracy": None,
    "accuracy_ci": None,
    "ttft_p95_ms": None,
    "e2e_p95_ms": None,
    "output_tokens_per_s": None,
    "usd_per_1m_at_slo": None,
    "load_type": None,
    "load": None,
    "_latency": None,
}


def latency_curves(con: ReadModel, models: Sequence[str] | None = None, *, scenario: str | None = None) -> list[Record]:
    """Per load level of each model's latest latency run (per scenario): P95 TTFT/E2E with sample CIs, SLO."""
    params = {"models": list(models) if models is not None else None, "scenario": scenario}
    rows = _records(con.execute(CURVES_SQL, params))
    cis = _sample_cis(con, [(r["run_id"], r["eval_date"], r["load_type"], r["load"]) for r in rows])
    for r in rows:
        r.update(cis.get((r["run_id"], r["load_type"], r["load"]), {"ttft_p95_ci": None, "e2e_p95_ci": None}))
        r["slo"] = _json_object(r["slo"])
    return rows


def cdfs(con: ReadModel, curves: Sequence[Record]) -> list[Record]:
    """Empirical CDFs of TTFT and E2E (ms) of each model's latest latency run, all at one load level per scenario.

    The level is the lightest one every model of the scenario ran (closed-loop before open-loop), so the lines
    compare like with like; when the models share none, each is drawn at its own lightest level (the legend says
    which). At most ``CDF_POINTS`` points per line: enough to draw, small enough to embed.
    """
    import numpy as np

    by_scenario: dict[Any, dict[str, list[Record]]] = {}
    for r in curves:
        by_scenario.setdefault(r["scenario"], {}).setdefault(r["model_id"], []).append(r)

    def order(level: tuple[str, float]) -> tuple[bool, float]:
        return (level[0] != "concurrency", level[1])

    chosen: dict[tuple[str, str], Record] = {}
    for scenario, models in by_scenario.items():
        shared = set.intersection(*({(r["load_type"], r["load"]) for r in rows} for rows in models.values()))
        for model, rows in models.items():
            wanted = min(shared or {(r["load_type"], r["load"]) for r in rows}, key=order)
            chosen[model, scenario] = next(r for r in rows if (r["load_type"], r["load"]) == wanted)
    if not chosen:
        return []
    run_levels = {(r["run_id"], r["load_type"], r["load"]): r for r in chosen.values()}
    data = con.execute(
        """select run_id, load_type, load, (first_token_s - sent_s) * 1000 as ttft_ms, (finished_s - sent_s) * 1000
           as e2e_ms from latency_samples
           where run_id in (select unnest($runs)) and ok and sent_s is not null and first_token_s is not null
             and finished_s is not null and input_tokens is null""",
        {"runs": sorted({k[0] for k in run_levels})},
    ).fetchnumpy()
    out = []
    run_ids = np.asarray(data["run_id"], dtype=object)
    load_types = np.asarray(data["load_type"], dtype=object)
    loads = np.asarray(data["load"], dtype=float)
    for (run_id, load_type, load), r in run_levels.items():
        mask = (run_ids == run_id) & (load_types == load_type) & (loads == load)
        if not mask.any():
            continue
        line: Record = {k: r[k] for k in ("model_id", "revision", "eval_date", "scenario", "load_type", "load")}
        line["n"] = int(mask.sum())
        for column in ("ttft_ms", "e2e_ms"):
            values = np.sort(np.asarray(data[column], dtype=float)[mask])
            keep = np.unique(np.linspace(0, len(values) - 1, min(CDF_POINTS, len(values))).round().astype(int))
            # The step function starts at 0 at the fastest request, then rises to i/n at the i-th.
            line[column] = [float(values[0])] + [float(values[i]) for i in keep]
            line[f"{column}_share"] = [0.0] + [(int(i) + 1) / len(values) for i in keep]
        out.append(line)
    return out


CDF_POINTS = 200


def night(con: ReadModel, when: dt.date | str | None = None) -> tuple[str | None, list[Record]]:
    """The latest night with comparisons (or ``when``) and every comparison of it, with whatever columns exist."""
    if when is None:
        when = con.execute("select max(eval_date) from comparisons").fetchall()[0][0]
    if when is None:
        return None, []
    rows = _records(con.execute(NIGHT_SQL, {"night": _date(when)}))
    return _date(when).isoformat(), rows


def change_points(con: ReadModel, models: Sequence[str] | None = None) -> list[Record]:
    """The current change points (those of each series' latest run) when the warehouse has them; none otherwise."""
    if not has_relation(con, "change_points"):
        return []
    from evals.analysis.change_series import latest_change_points

    return latest_change_points(con, list(models) if models is not None else None)


def filter_options(con: ReadModel) -> dict[str, list[str]]:
    """The suites and scenarios of published runs (what the Results page's filters offer)."""
    out = {}
    for column in ("suite", "scenario"):
        values = con.execute(f"select distinct {column} from runs where {column} is not null order by 1").fetchall()
        out[column] = [v for (v,) in values]
    return out


def history(con: ReadModel, model_id: str) -> list[Record]:
    """Every run record of one model (published, quarantined, failed), newest first."""
    wanted = ["eval_date", "revision", "status", "suite", "scenario", "backend", "dtype", "error", "run_id"]
    present = [c for c in wanted if c in columns(con, "all_runs")]
    sql = f"select {', '.join(present)} from all_runs where model_id = $m order by logical_date desc, run_id"
    return _records(con.execute(sql, {"m": model_id}))


def provenance(con: ReadModel, model_id: str) -> Record | None:
    """The runs record of one model's latest published run: what produced its numbers."""
    rows = _records(
        con.execute(
            "select * from runs where model_id = $m order by logical_date desc, finished_at desc nulls last limit 1",
            {"m": model_id},
        )
    )
    if not rows:
        return None
    record = rows[0]
    for key in ("config", "row_counts", "params_json"):
        if isinstance(record.get(key), str):
            record[key] = _json_object(record[key]) or record[key]
    return record


# ---------------------------------------------------------------------------------------------- helpers


def columns(con: ReadModel, relation: str) -> list[str]:
    """Column names of a view or table of the connection's main schema (empty when it does not exist)."""
    con.ensure(relation)  # named only as a parameter, so the query does not define it
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = 'main' and table_name = $t "
        "order by ordinal_position",
        {"t": relation},
    ).fetchall()
    return [name for (name,) in rows]


def has_relation(con: ReadModel, relation: str) -> bool:
    return bool(columns(con, relation))


def _records(cursor: duckdb.DuckDBPyConnection) -> list[Record]:
    names = [d[0] for d in cursor.description or ()]
    return [{name: _plain(value) for name, value in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _plain(value: Any) -> Any:
    """Values that survive strict JSON: no NaN or inf (browsers reject them), dates as ISO text, structs as dicts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    return value


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _json_object(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
