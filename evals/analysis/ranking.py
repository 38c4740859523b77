"""Reads behind the leaderboard's numbers: per-level SLO views of a run, its operating point, its headline.

The definitions themselves live in :mod:`evals.analysis.measures` (pure functions over rows); this module reads
the rows they need from the read model and ranks (:func:`rank`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evals.analysis import measures, power
from evals.analysis.measures import Key, Level, LevelAtSlo

if TYPE_CHECKING:
    import numpy as np

    from evals.warehouse.views import ReadModel

RANK_BY = ("accuracy", "slo_accuracy", "cost_at_slo", "capacity")
_RANKED = {
    "accuracy": ("accuracy", True),
    "slo_accuracy": ("slo_accuracy", True),
    "cost_at_slo": ("usd_per_1m_at_slo", False),
    "capacity": ("capacity", True),
}


_LEVEL_COLUMNS = "run_id, load_type, load, n_requests, goodput, output_tokens_per_s, duration_s, slo, gpu_hour_usd, \
gpu_count, usd_per_1m_output_tokens, ttft_p95_ms, e2e_p95_ms, n_failed, n_timeouts, ttft_tail_ratio"
_SAMPLE_COLUMNS = "run_id, load_type, load, ok, sent_s, first_token_s, finished_s, output_tokens, itl_ms"


def slo_levels(con: ReadModel, run: Mapping[str, Any], *, schema: str = "main") -> dict[Level, LevelAtSlo]:
    """Per load level of ``run``: goodput, throughput, tokens/s and cost counting only requests that met the SLO."""
    return slo_levels_by_run(con, [run], schema=schema).get(run["run_id"], {})


def slo_levels_by_run(
    con: ReadModel, runs: Sequence[Mapping[str, Any]], *, schema: str = "main"
) -> dict[str, dict[Level, LevelAtSlo]]:
    """:func:`slo_levels` of many runs, read in two queries (levels, then request samples) and grouped once."""
    if not runs:
        return {}
    keys = _run_keys(runs)
    levels = _by_run(con.execute(f"select {_LEVEL_COLUMNS} from {schema}.latency {_WHERE_RUNS} {_LOAD_LEVELS}", keys))
    samples = _by_run(
        con.execute(f"select {_SAMPLE_COLUMNS} from {schema}.latency_samples {_WHERE_RUNS} {_LOAD_LEVELS}", keys)
    )
    return {run_id: measures.levels_at_slo(rows, samples.get(run_id, [])) for run_id, rows in levels.items()}


# A load level is (load_type, load); the rows of a prompt-length sweep (``input_tokens`` set, the RAG scenario) are
# the input-length figure's, not a level of the load sweep.
_WHERE_RUNS = "where list_contains($runs, run_id) and list_contains($days::DATE[], eval_date)"
_LOAD_LEVELS = "and input_tokens is null"


def accuracy_rows_by_run(
    con: ReadModel, runs: Sequence[Mapping[str, Any]], *, schema: str = "main"
) -> dict[str, dict[Key, dict[str, Any]]]:
    """:func:`evals.analysis.accuracy_deltas.accuracy_rows` of many runs in one query (run_id -> rows)."""
    if not runs:
        return {}
    cursor = con.execute(
        "select run_id, task, metric, filter, task_group, value, stderr, n_samples, "
        f"coalesce(higher_is_better, true) as higher_is_better from {schema}.accuracy {_WHERE_RUNS}",
        _run_keys(runs),
    )
    return {
        run_id: {(r["task"], r["metric"], r["filter"]): r for r in rows} for run_id, rows in _by_run(cursor).items()
    }


def _run_keys(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {"runs": [str(r["run_id"]) for r in runs], "days": sorted({r["eval_date"] for r in runs})}


def _by_run(cursor: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in _records(cursor):
        out.setdefault(str(row["run_id"]), []).append(row)
    return out


def _records(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def headline_accuracy(
    con: ReadModel, run: Mapping[str, Any], alpha: float, *, schema: str = "main"
) -> tuple[float | None, int, float | None]:
    """(headline accuracy, tasks in it, the MDE of comparing it with another model's run on the same suite)."""
    from evals.analysis.accuracy_deltas import accuracy_rows

    return headline_of(accuracy_rows(con, run, schema=schema), alpha)


def headline_of(rows: Mapping[Key, Mapping[str, Any]], alpha: float) -> tuple[float | None, int, float | None]:
    """:func:`headline_accuracy` of one run's accuracy rows. The MDE here is unpaired (two models share no
    answers): 2.8 · √2 · SE(headline) at alpha 0.05."""
    found = measures.headline(rows)
    if found is None:
        return None, 0, None
    mde = power.mde(math.sqrt(2) * found.se, alpha) if found.se is not None else None
    return found.value, found.n_tasks, mde


def rank(rows: Sequence[dict[str, Any]], rank_by: str) -> list[dict[str, Any]]:
    """Rows ordered per (suite, scenario) by ``rank_by`` (cost ascending, the rest descending), with ``rank``."""
    column, descending = _RANKED[rank_by]

    def key(row: Mapping[str, Any]) -> tuple[Any, ...]:
        value = row[column]
        tie = row["slo_tokens_per_s"] or 0.0  # at equal capacity, more served tokens/s first
        if value is None:
            return (row["suite"] or "", row["scenario"] or "", 1, 0.0, 0.0, row["model_id"])
        return (row["suite"] or "", row["scenario"] or "", 0, -value if descending else value, -tie, row["model_id"])

    ordered = sorted(rows, key=key)
    board: tuple[Any, Any] | None = None
    position = 0
    out = []
    for row in ordered:
        if (row["suite"], row["scenario"]) != board:
            board, position = (row["suite"], row["scenario"]), 0
        position += 1
        out.append({"rank": position if row[column] is not None else None, **row})
    return out


def headline_scores_by_run(
    con: ReadModel,
    runs: Sequence[Mapping[str, Any]],
    rows_by_run: Mapping[str, Mapping[Key, Mapping[str, Any]]],
    *,
    schema: str = "main",
) -> dict[str, dict[Key, list[float]]]:
    """Per run, the per-question scores of its headline metrics (one query for all runs)."""
    wanted = {run_id: set(measures.headline_keys(rows).values()) for run_id, rows in rows_by_run.items()}
    tasks = sorted({key[0] for keys in wanted.values() for key in keys})
    if not runs or not tasks:
        return {}
    cursor = con.execute(
        f"select run_id, task, metric, filter, list(value) from {schema}.accuracy_samples {_WHERE_RUNS} "
        "and list_contains($tasks, task) group by all",
        {**_run_keys(runs), "tasks": tasks},
    )
    out: dict[str, dict[Key, list[float]]] = {}
    for run_id, task, metric, filter_, values in cursor.fetchall():
        if (task, metric, filter_) in wanted.get(str(run_id), set()):
            out.setdefault(str(run_id), {})[(task, metric, filter_)] = [float(v) for v in values]
    return out


def headline_tasks_of(
    rows: Mapping[Key, Mapping[str, Any]], scores: Mapping[Key, list[float]]
) -> list[tuple[float, float | None, list[float] | None]]:
    """(value, SE, per-question scores or None) per headline task of one run's rows."""
    from evals.analysis import stats

    out = []
    for key in measures.headline_keys(rows).values():
        row = rows[key]
        se = stats.standard_error(row["value"], row["stderr"], row["n_samples"], row["metric"])[0]
        out.append((float(row["value"]), se, scores.get(key) or None))
    return out


def rank_draws(
    row: Mapping[str, Any], tasks: Sequence[tuple[float, float | None, list[float] | None]], rank_by: str
) -> np.ndarray | None:
    """Bootstrap draws of one leaderboard row's ranked value (:mod:`evals.analysis.uncertainty`): accuracy over
    questions, goodput at capacity over requests (SLO-effective accuracy, cost at the SLO: the tokens served within
    the SLO move with the share of requests that met it). None without a value, or when ranking by capacity (its
    uncertainty is ``capacity_status``); a value with nothing to resample is drawn as itself."""
    import zlib

    import numpy as np

    from evals.analysis import uncertainty

    column, _ = _RANKED[rank_by]
    value = row[column]
    if value is None or rank_by == "capacity":
        return None
    seed = uncertainty.SEED + zlib.crc32(str(row["run_id"]).encode())  # models draw independently, reproducibly
    point = np.full(uncertainty.DRAWS, float(value))
    accuracy = uncertainty.headline_draws(tasks, seed=seed) if tasks else None
    if rank_by == "accuracy":
        return accuracy if accuracy is not None else point
    goodput, n = row["goodput_at_capacity"], row["n_requests_at_capacity"]
    if not n or not goodput:
        return point
    served = uncertainty.share_draws(goodput, n, seed=seed + 1)
    if rank_by == "slo_accuracy":
        return (accuracy if accuracy is not None else float(row["accuracy"])) * served
    return float(value) * goodput / np.maximum(served, 1.0 / n)


def with_rank_intervals(rows: Sequence[dict[str, Any]], draws: Mapping[str, Any], rank_by: str) -> list[dict[str, Any]]:
    """``rows`` (ranked) with ``rank_low`` / ``rank_high``: the 95 % interval of each row's rank within its board,
    from ``draws`` (run_id -> the draws of :func:`rank_draws`)."""
    from evals.analysis import uncertainty

    _, descending = _RANKED[rank_by]
    boards: dict[tuple[Any, Any], list[int]] = {}
    for i, row in enumerate(rows):
        boards.setdefault((row["suite"], row["scenario"]), []).append(i)
    out = [{**row, "rank_low": None, "rank_high": None} for row in rows]
    for members in boards.values():
        intervals = uncertainty.rank_intervals([draws.get(rows[i]["run_id"]) for i in members], descending=descending)
        for i, (low, high) in zip(members, intervals, strict=True):
            out[i]["rank_low"], out[i]["rank_high"] = low, high
    return out
