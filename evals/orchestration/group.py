"""The per-checkpoint task group (materialize → evaluate on GPU → validate + publish) and the night's tasks.

Task bodies are one call into :mod:`evals.pipeline.steps`, imported inside the task so parsing stays light. XCom carries
refs, URIs and small manifests only — never frames.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, TriggerRule, get_current_context, task, task_group

from evals.orchestration.routing import Routing

# The results Asset: updated whenever a night (or a manual run) has published to the warehouse `runs` table.
RESULTS = Asset(name="checkpoint_evals_runs", group="checkpoint-evals")

# Feed the GPUs, finish checkpoints before opening new ones. A mapped night makes all its materializes ready at
# once, and each scheduler loop looks only at the few highest-priority ready tasks (as many as the pools have open
# slots) and stops once it queued any. With Airflow's default weights (materialize first) every materialize of a
# 200-checkpoint night went before any evaluation: the GPU pool idled. With materialize above publish, the
# materialized-but-waiting evaluations filled every loop's window: the CPU worker idled (bench/fleet_night.py).
# Evaluations first; then publish (a checkpoint finished); materialize last. A CPU worker too small to publish
# behind the GPUs and materialize ahead of them still starves them: size its slots (docker/README.md).
PRIORITY = {"evaluate": 3, "publish": 2, "materialize": 1}


def run_context() -> dict[str, Any]:
    """Who is running: dag id, DAG run id, and the date that keys the run (logical date, else run_after)."""
    context = get_current_context()
    dag_run = context["dag_run"]
    when = context.get("logical_date") or dag_run.run_after
    return {"dag_id": dag_run.dag_id, "dag_run_id": dag_run.run_id, "logical_date": when.isoformat()}


@task(task_id="materialize", priority_weight=PRIORITY["materialize"], weight_rule="absolute")
def materialize(item: Any) -> dict[str, Any]:
    """Fetch the checkpoint safely (allowed files only, pinned SHA) into the local cache."""
    from evals.pipeline.steps import materialize_step

    return materialize_step(item, run_context())


def _evaluate(manifest: Any) -> dict[str, Any]:
    """Serve the checkpoint once and run the accuracy suite and the latency scenario against it."""
    from evals.pipeline.steps import evaluate_step

    return evaluate_step(manifest, run_context())


@task(task_id="publish", priority_weight=PRIORITY["publish"], weight_rule="absolute")
def publish(evaluation: Any) -> dict[str, Any]:
    """Validate the staged results (great-expectations); publish them, or quarantine them."""
    from evals.pipeline.steps import publish_step

    return publish_step(evaluation)


def checkpoint_group(routing: Routing) -> Any:
    """The task group mapped over a night's checkpoints; GPU work routed to the GPU queue and pool."""
    evaluate = task(
        task_id="evaluate", priority_weight=PRIORITY["evaluate"], weight_rule="absolute", **routing.gpu_task_kwargs()
    )(_evaluate)

    @task_group(group_id="checkpoint")
    def evaluate_checkpoint(item: Any) -> Any:
        return publish(evaluate(materialize(item)))

    return evaluate_checkpoint


@task(task_id="summarize", trigger_rule=TriggerRule.ALL_DONE)
def summarize(plan: list[dict[str, Any]]) -> dict[str, Any]:
    """Fail the DAG run, after every checkpoint had its chance, if any of them failed or was quarantined."""
    from evals.pipeline.steps import summarize_step

    return summarize_step(plan, run_context())


@task(task_id="compare_and_report", trigger_rule=TriggerRule.ALL_DONE, outlets=[RESULTS])
def compare_and_report(plan: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare tonight's published runs with their baselines; refresh the report."""
    from evals.pipeline.steps import compare_step

    return compare_step(plan, run_context())


def wire(plan: Any, routing: Routing) -> None:
    """plan (one item per checkpoint: its ref and the run's options) → checkpoint group per item → report, summary
    → the serving decision (decide → a human's approval per promote → apply_approval, see :mod:`.approval`)."""
    from evals.orchestration.approval import wire_decision  # it uses this module's run_context

    evaluate_checkpoint = checkpoint_group(routing)
    results = evaluate_checkpoint.expand(item=plan)
    report = compare_and_report(plan)
    # Leaves fail the DAG run: a checkpoint not published (summarize); a regression under EVALS_FAIL_ON_REGRESSION
    # (compare_and_report, whose failure leaves the decision upstream_failed).
    results >> [report, summarize(plan)]
    wire_decision(plan, report, routing)
