"""SLO-aware ranking: capacity, throughput and cost at the SLO, SLO-effective accuracy, per suite and scenario.

Definitions (DESIGN.md, "Metric definitions"):

- **Capacity at SLO**: the highest load level, of the load type of the scenario's reference level, at which
  at least ``min_goodput`` of the requests met every SLO limit (failed requests are misses).
- **Cost per 1M output tokens at SLO**: gpu_hour_usd × gpu_count / (tokens/s of the requests that met the SLO
  at the capacity level × 3600) × 1e6 — tokens of requests that missed the SLO are not counted as served.
- **SLO-effective accuracy**: headline accuracy × goodput at the capacity level; an answer the user abandoned
  is worth nothing. Null without a capacity level.

Latency columns come from stable operating points: the scenario's reference level (its first level) and the
capacity level — never from a level picked by the night's throughput.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evals.analysis import power, stats
from evals.analysis.accuracy_deltas import headline_keys

if TYPE_CHECKING:
    import duckdb

RANK_BY = ("accuracy", "slo_accuracy", "cost_at_slo", "capacity")
Level = tuple[str, float]  # load_type, load


@dataclass(frozen=True)
class LevelAtSlo:
    """One load level of one run, seen through its SLO."""

    load_type: str
    load: float
    goodput: float | None
    output_tokens_per_s: float | None
    slo_tokens_per_s: float | None  # output tokens of requests that met the SLO, per second of the level
    usd_per_1m_at_slo: float | None
    ttft_p95_ms: float | None
    e2e_p95_ms: float | None


def cost_per_1m(gpu_hour_usd: float | None, gpu_count: int | None, tokens_per_s: float | None) -> float | None:
    """gpu_hour_usd × gpu_count / (tokens/s × 3600) × 1e6; None without a price or without served tokens."""
    if not gpu_hour_usd or not tokens_per_s or tokens_per_s <= 0 or not math.isfinite(tokens_per_s):
        return None
    return gpu_hour_usd * (gpu_count or 1) / (tokens_per_s * 3600.0) * 1e6


def capacity(levels: Iterable[LevelAtSlo], load_type: str, min_goodput: float) -> LevelAtSlo | None:
    """The highest ``load_type`` level whose goodput reached ``min_goodput``; None if no level did."""
    held = [lv for lv in levels if lv.load_type == load_type and lv.goodput is not None and lv.goodput >= min_goodput]
    return max(held, key=lambda lv: lv.load) if held else None


def slo_levels(con: duckdb.DuckDBPyConnection, run: Mapping[str, Any]) -> dict[Level, LevelAtSlo]:
    """Per load level of ``run``: goodput, throughput, tokens/s and cost counting only requests that met the SLO."""
    from evals.latency.metrics import RequestMetrics, meets_slo

    cursor = con.execute(
        "select load_type, load, goodput, output_tokens_per_s, duration_s, slo, gpu_hour_usd, gpu_count, "
        "ttft_p95_ms, e2e_p95_ms from latency where run_id = $run and eval_date = $day",
        {"run": run["run_id"], "day": run["eval_date"]},
    )
    levels = cursor.fetchall()
    samples = con.execute(
        "select load_type, load, ok, sent_s, first_token_s, finished_s, output_tokens, itl_ms from latency_samples "
        "where run_id = $run and eval_date = $day",
        {"run": run["run_id"], "day": run["eval_date"]},
    ).fetchall()
    by_level: dict[Level, list[tuple[Any, ...]]] = {}
    for row in samples:
        by_level.setdefault((str(row[0]), float(row[1])), []).append(row[2:])
    out: dict[Level, LevelAtSlo] = {}
    for load_type, load, goodput, tps, duration, slo_json, price, gpus, ttft, e2e in levels:
        key = (str(load_type), float(load))
        slo = json.loads(slo_json) if slo_json else {}
        slo_tps = None
        if key in by_level and duration:
            served = 0
            for ok, sent, first, finished, tokens, itl in by_level[key]:
                if not ok or sent is None or first is None or finished is None:
                    continue  # a failed request is a miss
                n_tokens = int(tokens or (len(itl) + 1 if itl else 1))
                ttft_ms, e2e_ms = (first - sent) * 1e3, (finished - sent) * 1e3
                metrics = RequestMetrics(
                    ttft_ms=ttft_ms,
                    e2e_ms=e2e_ms,
                    tpot_ms=(e2e_ms - ttft_ms) / (n_tokens - 1) if n_tokens > 1 else None,
                    itl_ms=list(itl or []),
                )
                if meets_slo(metrics, slo):
                    served += int(tokens or 0)
            slo_tps = served / float(duration)
        elif tps is not None and goodput is not None and goodput >= 1.0:
            slo_tps = float(tps)  # every request met the SLO: all tokens count (no samples needed)
        out[key] = LevelAtSlo(
            load_type=key[0],
            load=key[1],
            goodput=_num(goodput),
            output_tokens_per_s=_num(tps),
            slo_tokens_per_s=slo_tps,
            usd_per_1m_at_slo=cost_per_1m(price, gpus, slo_tps),
            ttft_p95_ms=_num(ttft),
            e2e_p95_ms=_num(e2e),
        )
    return out


def reference_level(config_json: str | None, levels: Iterable[Level]) -> Level | None:
    """The scenario's reference level: its declared ``reference_level`` index, else its first level.

    Read from the scenario the run recorded (``runs.config``); without one, the lightest level of the first
    load type present (concurrency before rate).
    """
    present = sorted(levels, key=lambda lv: (lv[0] != "concurrency", lv[1]))
    scenario = _recorded_scenario(config_json)
    declared = scenario.get("levels") if scenario else None
    if declared:
        index = int(scenario.get("reference_level") or 0) if scenario else 0
        first = declared[min(index, len(declared) - 1)]
        kind = "concurrency" if "concurrency" in first else "rate"
        key = (kind, float(first[kind]))
        if key in present:
            return key
    return present[0] if present else None


def _recorded_scenario(config_json: str | None) -> dict[str, Any] | None:
    if not config_json:
        return None
    try:
        config = json.loads(config_json)
    except ValueError:
        return None
    scenario = (config.get("latency") or {}).get("scenario") if isinstance(config, dict) else None
    return scenario if isinstance(scenario, dict) else None


def operating_point(con: duckdb.DuckDBPyConnection, run: Mapping[str, Any], min_goodput: float) -> dict[str, Any]:
    """The latency/cost columns of one run: reference-level latencies and everything at the capacity level."""
    levels = slo_levels(con, run)
    ref = reference_level(run.get("config"), levels)
    out: dict[str, Any] = dict.fromkeys(_POINT_COLUMNS)
    if ref is None:
        return out
    at_ref = levels[ref]
    cap = capacity(levels.values(), ref[0], min_goodput)
    out.update(
        reference_load_type=ref[0],
        reference_load=ref[1],
        ttft_p95_ms=at_ref.ttft_p95_ms,
        e2e_p95_ms=at_ref.e2e_p95_ms,
    )
    if cap is not None:
        out.update(
            capacity=cap.load,
            goodput_at_capacity=cap.goodput,
            tokens_per_s_at_capacity=cap.output_tokens_per_s,
            slo_tokens_per_s=cap.slo_tokens_per_s,
            usd_per_1m_at_slo=cap.usd_per_1m_at_slo,
            capacity_ttft_p95_ms=cap.ttft_p95_ms,
            capacity_e2e_p95_ms=cap.e2e_p95_ms,
        )
    return out


_POINT_COLUMNS = (
    "reference_load_type",
    "reference_load",
    "ttft_p95_ms",
    "e2e_p95_ms",
    "capacity",
    "goodput_at_capacity",
    "tokens_per_s_at_capacity",
    "slo_tokens_per_s",
    "usd_per_1m_at_slo",
    "capacity_ttft_p95_ms",
    "capacity_e2e_p95_ms",
)


def headline_accuracy(
    con: duckdb.DuckDBPyConnection, run: Mapping[str, Any], alpha: float
) -> tuple[float | None, int, float | None]:
    """(headline accuracy, tasks in it, the MDE of comparing it with another model's run on the same suite).

    The MDE here is unpaired (two models share no answers): 2.8 · √2 · SE(headline) at alpha 0.05.
    """
    from evals.analysis.accuracy_deltas import accuracy_rows

    rows = accuracy_rows(con, run)
    keys = headline_keys(rows)
    if not keys:
        return None, 0, None
    chosen = [rows[k] for k in keys.values()]
    value = sum(r["value"] for r in chosen) / len(chosen)
    ses = [stats.standard_error(r["value"], r["stderr"], r["n_samples"], r["metric"])[0] for r in chosen]
    if any(se is None for se in ses):
        return value, len(chosen), None
    se = math.sqrt(sum(s**2 for s in ses if s is not None)) / len(chosen)
    return value, len(chosen), power.mde(math.sqrt(2) * se, alpha)


def leaderboard(
    con: duckdb.DuckDBPyConnection,
    *,
    rank_by: str = "accuracy",
    suite: str | None = None,
    scenario: str | None = None,
    min_goodput: float = 0.9,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """The latest published run per (model, suite, scenario), ranked within each (suite, scenario) by ``rank_by``.

    A model's nightly run never replaces its smoke number: each (suite, scenario) is its own board. ``rank``
    is 1 for the best; runs without the ranked value come last, unranked.
    """
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")
    runs = _latest_runs(con, suite, scenario)
    rows = []
    for run in runs:
        accuracy, n_tasks, mde = headline_accuracy(con, run, alpha)
        point = operating_point(con, run, min_goodput)
        goodput = point["goodput_at_capacity"]
        rows.append(
            {
                "suite": run["suite"],
                "scenario": run["scenario"],
                "model_id": run["model_id"],
                "revision": run["revision"],
                "eval_date": run["eval_date"],
                "run_id": run["run_id"],
                "accuracy": accuracy,
                "n_tasks": n_tasks,
                "accuracy_mde": mde,
                **point,
                "slo_accuracy": accuracy * goodput if accuracy is not None and goodput is not None else None,
            }
        )
    return rank(rows, rank_by)


def rank(rows: Sequence[dict[str, Any]], rank_by: str) -> list[dict[str, Any]]:
    """Rows ordered per (suite, scenario) by ``rank_by`` (cost ascending, the rest descending), with ``rank``."""
    column, descending = {
        "accuracy": ("accuracy", True),
        "slo_accuracy": ("slo_accuracy", True),
        "cost_at_slo": ("usd_per_1m_at_slo", False),
        "capacity": ("capacity", True),
    }[rank_by]

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


def _latest_runs(con: duckdb.DuckDBPyConnection, suite: str | None, scenario: str | None) -> list[dict[str, Any]]:
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


def _num(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None
