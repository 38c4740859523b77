"""Manual: evaluate the checkpoints given in the trigger form (refs or local paths) — same steps as nightly."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Param, dag, task

from evals.orchestration.group import run_context, wire
from evals.orchestration.params import BACKENDS, scenario_names, suite_names
from evals.orchestration.policy import default_args
from evals.orchestration.routing import Routing

routing = Routing.from_settings()


@dag(
    dag_id="evals_manual",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args=default_args(routing.retries, routing.retry_delay_s),
    tags=["checkpoint-evals", "manual"],
    params={
        "checkpoints": Param(
            [],
            type="array",
            items={"type": "string", "minLength": 1},
            minItems=1,
            title="Checkpoints",
            description="Refs like hf:org/model@<40-hex sha>, package:smollm2, or local directory paths.",
        ),
        "suite": Param("smoke", enum=[*suite_names(), "none"], description="Accuracy suite ('none': skip)."),
        "scenario": Param("smoke", enum=[*scenario_names(), "none"], description="Latency scenario ('none': skip)."),
        "limit": Param(None, type=["null", "integer"], minimum=1, description="Max samples per task (debug)."),
        "backend": Param("auto", enum=BACKENDS, description="auto: vLLM on GPU workers, transformers on CPU."),
        "endpoint": Param(
            None,
            type=["null", "string"],
            pattern="^https?://",
            description="Benchmark an already running OpenAI-compatible server instead of launching one.",
        ),
    },
    doc_md=__doc__,
)
def evals_manual() -> None:
    @task(task_id="plan")
    def plan(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Check the form (refs parse, suite/scenario exist) and pin every checkpoint."""
        from evals.pipeline.steps import plan_step

        return plan_step("manual", dict(params or {}), run_context())

    wire(plan(), routing)


evals_manual()
