"""The evidence of a serving decision, read from the warehouse: runs, paired accuracy, operating points, prices."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evals.analysis.decision import Accuracy, Evidence, GuardrailValue
from evals.analysis.serving_cost import Side

if TYPE_CHECKING:
    from evals.pipeline.serving import ServingConfig
    from evals.warehouse.views import ReadModel

log = logging.getLogger(__name__)

RUN_COLUMNS = "run_id, model_id, revision, eval_date, logical_date, suite, scenario, config, source, dag_id, dag_run_id"


def records(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def published_run(con: ReadModel, run_id: str) -> dict[str, Any] | None:
    found = records(con.execute(f"select {RUN_COLUMNS} from runs where run_id = $run", {"run": run_id}))
    return found[0] if found else None


@functools.cache
def _resolved_model_id(ref_text: str) -> str:
    """The model id a champion ref names in the runs table (``package:smollm2`` -> the packaged model's full id)."""
    from evals.checkpoints import CheckpointRef
    from evals.checkpoints.materialize import source_for
    from evals.errors import EvalsError
    from evals.settings import get_settings

    ref = CheckpointRef.parse(ref_text)
    try:
        return source_for(ref, get_settings()).resolve(ref).model_id
    except EvalsError as exc:
        log.warning("champion %s not resolved (%s); matching runs by its model id", ref_text, exc)
        return ref.model_id


def champion_identity(con: ReadModel, champion: str) -> tuple[str, str | None]:
    """(model id, revision or None) of the configured champion as the runs table records it."""
    from evals.checkpoints import CheckpointRef

    ref = CheckpointRef.parse(champion)
    known = con.execute("select count(*) from runs where model_id = $m", {"m": ref.model_id}).fetchone()
    model_id = ref.model_id if known and known[0] else _resolved_model_id(champion)
    return model_id, ref.revision


def champion_run(con: ReadModel, identity: tuple[str, str | None], like: Mapping[str, Any]) -> dict[str, Any] | None:
    """The champion's published run of ``like``'s night (eval date), suite and scenario; the latest if several."""
    model_id, revision = identity
    found = records(
        con.execute(
            f"""select {RUN_COLUMNS} from runs
                where model_id = $model and ($revision is null or revision = $revision) and eval_date = $day
                  and suite is not distinct from $suite and scenario is not distinct from $scenario
                order by logical_date desc, finished_at desc nulls last limit 1""",
            {
                "model": model_id,
                "revision": revision,
                "day": like["eval_date"],
                "suite": like["suite"],
                "scenario": like["scenario"],
            },
        )
    )
    return found[0] if found else None


def evidence(
    con: ReadModel,
    run: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    config: ServingConfig,
    min_goodput: float,
) -> Evidence:
    """Everything :func:`evals.analysis.decision.decide` judges, for one challenger run."""
    return Evidence(
        challenger=side(con, run, config, min_goodput),
        champion=side(con, champion, config, min_goodput, ref=config.champion) if champion is not None else None,
        accuracy=accuracy(con, run, champion, config.policy.alpha) if champion is not None else None,
        guardrails=guardrails(con, run, config),
        suite=run["suite"],
        guardrail_score=guardrail_score(con, run, config),
    )


def accuracy(con: ReadModel, run: Mapping[str, Any], champion: Mapping[str, Any], alpha: float) -> Accuracy | None:
    """challenger - champion headline accuracy, paired per question where both runs logged samples."""
    if run["suite"] is None:
        return None
    from evals.analysis.accuracy_deltas import HEADLINE, accuracy_deltas
    from evals.analysis.options import CompareOptions

    compared = accuracy_deltas(con, run, champion, CompareOptions(alpha=alpha))
    est = next((est for name, est, *_ in compared if name == HEADLINE), None)
    if est is None or est.delta is None:
        return None
    pairs = f"{est.n_pairs} paired questions" if est.method == "paired" else f"{est.method}: samples missing"
    return Accuracy(
        suite=run["suite"],
        delta=est.delta,
        se=est.se,
        method=est.method,
        n_pairs=est.n_pairs,
        n_fixed=est.n_fixed,
        n_broken=est.n_broken,
        value=est.value,
        champion_value=est.baseline_value,
        evidence=f"accuracy_samples of {run['run_id']} vs {champion['run_id']} ({pairs})",
    )


def guardrails(con: ReadModel, run: Mapping[str, Any], config: ServingConfig) -> tuple[GuardrailValue, ...]:
    """Each guardrail's metric from the challenger's run of the guardrail suite on the same night."""
    from evals.analysis.stats import standard_error

    out = []
    for g in config.policy.guardrails:
        name = f"guardrail:{g.suite}:{g.task}/{g.metric}"
        rows = records(
            con.execute(
                """select a.run_id, a.value, a.stderr, a.n_samples from accuracy a join runs r using (run_id)
                   where r.model_id = $model and r.eval_date = $day and a.suite = $suite and a.task = $task
                     and a.metric = $metric and a.filter = $filter
                   order by r.logical_date desc limit 1""",
                {"model": run["model_id"], "day": run["eval_date"], "suite": g.suite, "task": g.task,
                 "metric": g.metric, "filter": g.filter},
            )
        )  # fmt: skip
        if not rows:
            out.append(GuardrailValue(name, g.floor, None))
            continue
        row = rows[0]
        se, _ = standard_error(row["value"], row["stderr"], row["n_samples"], g.metric)
        out.append(GuardrailValue(name, g.floor, float(row["value"]), se, evidence=f"accuracy of {row['run_id']}"))
    return tuple(out)


def guardrail_score(con: ReadModel, run: Mapping[str, Any], config: ServingConfig) -> GuardrailValue | None:
    """The balanced guardrail score of the challenger's latest run of the policy's guardrail suite that night."""
    wanted = config.policy.guardrail_score
    if wanted is None:
        return None
    from evals.analysis.measures import guardrail_headline
    from evals.analysis.ranking import accuracy_rows_by_run

    name = f"guardrail_score:{wanted.suite}"
    found = records(
        con.execute(
            f"""select {RUN_COLUMNS} from runs
                where model_id = $model and revision = $revision and eval_date = $day and suite = $suite
                order by logical_date desc, finished_at desc nulls last limit 1""",
            {"model": run["model_id"], "revision": run["revision"], "day": run["eval_date"], "suite": wanted.suite},
        )
    )
    score = guardrail_headline(accuracy_rows_by_run(con, found).get(found[0]["run_id"], {})) if found else None
    if score is None:
        return GuardrailValue(name, wanted.floor, None)
    return GuardrailValue(name, wanted.floor, score.value, score.se, evidence=f"accuracy of {found[0]['run_id']}")


def side(
    con: ReadModel, run: Mapping[str, Any], config: ServingConfig, min_goodput: float, *, ref: str | None = None
) -> Side:
    """One run's operating point (:mod:`evals.analysis.measures`), reference-level samples and prices."""
    from evals.analysis import measures
    from evals.analysis.ranking import slo_levels

    levels = slo_levels(con, run)
    point = measures.operating_point(levels, run.get("config"), min_goodput)
    rows = records(con.execute("select * from latency where run_id = $run", {"run": run["run_id"]}))
    reference = (point["reference_load_type"], point["reference_load"])
    ref_row = next((r for r in rows if (r["load_type"], r["load"]) == reference), rows[0] if rows else {})
    samples = records(
        con.execute(
            """select sent_s, first_token_s, finished_s, output_tokens, prompt_tokens, coalesce(trial, 0) as trial
               from latency_samples
               where run_id = $run and load_type = $type and load = $load and ok""",
            {"run": run["run_id"], "type": reference[0], "load": reference[1]},
        )
    )
    timed = [s for s in samples if s["sent_s"] is not None and s["first_token_s"] is not None]
    finished = [s for s in timed if s["finished_s"] is not None]  # e2e_ms and e2e_trial, one filter: aligned
    outputs = [s["output_tokens"] for s in samples if s["output_tokens"]]
    prompts = [s["prompt_tokens"] for s in samples if s["prompt_tokens"] is not None]
    per_request = None
    if outputs:
        per_request = sum(outputs) / len(outputs)
    elif ref_row.get("requests_per_s"):
        per_request = (ref_row.get("output_tokens_per_s") or 0.0) / ref_row["requests_per_s"]
    price = config.price_for(run["model_id"], ref)
    return Side(
        run_id=run["run_id"],
        model_id=run["model_id"],
        slo_tokens_per_s=point["slo_tokens_per_s"],
        usd_per_1m_at_slo=point["usd_per_1m_at_slo"],
        gpu_hour_usd=price.gpu_hour_usd if price else ref_row.get("gpu_hour_usd"),
        gpu_count=(price.gpu_count if price else None) or ref_row.get("gpu_count"),
        usd_per_1m_input_tokens=price.usd_per_1m_input_tokens if price else ref_row.get("usd_per_1m_input_tokens"),
        usd_per_1m_output_tokens=price.usd_per_1m_output_tokens if price else ref_row.get("usd_per_1m_output_tokens"),
        ttft_p95_ms=point["ttft_p95_ms"],
        e2e_p95_ms=point["e2e_p95_ms"],
        ttft_ms=tuple((s["first_token_s"] - s["sent_s"]) * 1e3 for s in timed),
        e2e_ms=tuple((s["finished_s"] - s["sent_s"]) * 1e3 for s in finished),
        ttft_trial=tuple(int(s["trial"]) for s in timed),
        e2e_trial=tuple(int(s["trial"]) for s in finished),
        output_tokens_per_request=per_request,
        input_tokens_per_request=sum(prompts) / len(prompts) if prompts else None,
        reference=f"{reference[0]}={reference[1]:g}" if reference[0] is not None else None,
        ttft_tail_ratio=point["ttft_tail_ratio"],
        n_errors=point["n_errors"],
        n_requests=point["n_requests"],
    )
