"""What the TTFT-vs-input-length figure draws: each model's latest prompt-length sweep (the RAG scenario)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evals.report.figure_data import Record, _json_object, _records, columns

if TYPE_CHECKING:
    from evals.warehouse.views import ReadModel


# The latest published run per (model, scenario) of a prompt-length sweep: its levels by input length.
INPUT_LENGTH_SQL = """
with latest as (
    select run_id, model_id, revision, eval_date, scenario from runs
    where run_id in (select distinct run_id from latency where input_tokens is not null)
      and ($scenario is null or scenario = $scenario) and ($models is null or list_contains($models, model_id))
    qualify row_number() over (
        partition by model_id, scenario order by logical_date desc, finished_at desc nulls last) = 1
)
select r.model_id, r.revision, r.eval_date, r.scenario, l.load_type, l.load, l.input_tokens, l.prompt_tokens_p50,
       l.n_requests, l.n_failed, l.ttft_p50_ms, l.ttft_p95_ms, l.slo
from latency l join latest r on l.run_id = r.run_id and l.eval_date = r.eval_date
where l.input_tokens is not null
order by r.model_id, r.scenario, l.load_type, l.load, l.input_tokens
"""


def ttft_by_input_length(
    con: ReadModel, models: Sequence[str] | None = None, *, scenario: str | None = None
) -> list[Record]:
    """One line per (model, scenario, load level) of each model's latest prompt-length sweep: P95 TTFT per input
    length, the SLO's P95 TTFT limit and where P95 TTFT crosses it (:func:`evals.latency.rag.slo_crossing`)."""
    from evals.latency.rag import slo_crossing

    if "input_tokens" not in columns(con, "latency"):
        return []
    params = {"models": list(models) if models is not None else None, "scenario": scenario}
    lines: dict[tuple[Any, ...], Record] = {}
    for r in _records(con.execute(INPUT_LENGTH_SQL, params)):
        key = (r["model_id"], r["scenario"], r["load_type"], r["load"])
        limit = (_json_object(r["slo"]) or {}).get("ttft_p95_ms")
        line = lines.setdefault(
            key,
            {k: r[k] for k in ("model_id", "revision", "eval_date", "scenario", "load_type", "load")}
            | {"slo_ttft_p95_ms": limit, "points": []},
        )
        line["points"].append({k: r[k] for k in ("input_tokens", "prompt_tokens_p50", "n_requests", "n_failed",
                                                 "ttft_p50_ms", "ttft_p95_ms")})  # fmt: skip
    for line in lines.values():
        limit, points = line["slo_ttft_p95_ms"], line["points"]
        crossing = (
            slo_crossing([p["input_tokens"] for p in points], [p["ttft_p95_ms"] for p in points], limit)
            if limit is not None
            else None
        )
        line["crossing"] = vars(crossing) if crossing is not None else None
    return list(lines.values())
