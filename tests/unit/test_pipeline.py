"""Pipeline step contracts that need no model: strict-JSON step results, the same run keys in every step."""

import datetime as dt
import math

import pytest

from evals.errors import TerminalError
from evals.pipeline import plan as planning
from evals.pipeline import steps as pipeline
from evals.pipeline.publish import run_record

TINY = "package:evals-test/tiny-llama"
CONTEXT = {"dag_id": "evals_manual", "dag_run_id": "manual__1", "logical_date": "2026-11-20T02:00:00+00:00"}


def test_step_results_must_be_strict_json() -> None:
    assert pipeline.json_safe({"a": [1, 2.5, None, "x"]}) == {"a": [1, 2.5, None, "x"]}
    with pytest.raises(TerminalError, match="strict JSON"):
        pipeline.json_safe({"load": math.inf})
    with pytest.raises(TerminalError, match="strict JSON"):
        pipeline.json_safe({"when": dt.datetime.now()})


def test_run_keys_are_the_same_in_every_step() -> None:
    items = planning.plan_manual({"checkpoints": [TINY], "suite": "smoke", "scenario": "smoke"}, CONTEXT)

    ref = items[0].ref
    assert ref is not None
    first = run_record(ref, items[0].options, CONTEXT)
    again = run_record(ref, items[0].options, dict(CONTEXT))
    assert first.run_id == again.run_id and first.eval_date == dt.date(2026, 11, 20)
