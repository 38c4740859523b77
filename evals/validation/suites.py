"""The GX expectation suites of every table, built in code from settings and what the run was asked for."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evals.schemas import APPROVAL_OUTCOMES, DECISION_OUTCOMES
from evals.validation.expectations import FINITE_MAX, common, gx_expectations, not_null
from evals.validation.expected import Expected
from evals.validation.frames import CHECK_PREFIX
from evals.validation.latency_suites import latency_suite, samples_suite

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

    from evals.settings import Settings
    from evals.warehouse import RunRecord

# Columns that identify an offending row in the validation result and in ValidationFailed messages.
INDEX_COLUMNS: dict[str, list[str]] = {
    "runs": ["run_id"],
    "accuracy": ["task", "metric", "filter"],
    "accuracy_samples": ["task", "doc_id", "metric", "filter"],
    "latency": [f"{CHECK_PREFIX}level"],
    "latency_samples": [f"{CHECK_PREFIX}level", "request_index"],
    "decisions": ["decision_id"],
}

# How far the mean of a mean-aggregated metric's per-document scores may be from lm-eval's stored aggregate.
MEAN_TOLERANCE = 1e-12


def suite_builders(
    tables: set[str], expected: Expected, settings: Settings
) -> dict[str, tuple[str, Callable[[], list[Expectation]]]]:
    """Per table to validate: (fingerprint, builder of its expectations); ``runs`` is always validated.

    A suite depends only on the tables present, what the run was asked for and the thresholds — the run's own
    model and revision come in as expectation parameters (see :func:`suite_parameters`) — so runs with equal
    fingerprints share one suite and GX need not rebuild it (which costs more than validating).
    """
    builders: dict[str, Callable[[], list[Expectation]]] = {
        "runs": lambda: _runs(tables, settings),
        "accuracy": lambda: _accuracy(expected, settings),
        "accuracy_samples": lambda: _accuracy_samples(expected, with_accuracy="accuracy" in tables),
        "latency": lambda: latency_suite(expected, settings, with_samples="latency_samples" in tables),
        "latency_samples": lambda: samples_suite(with_latency="latency" in tables),
    }
    fingerprint = json.dumps([sorted(tables), expected.to_json(), thresholds(settings)], sort_keys=True, default=str)
    ordered = ("runs", *sorted(tables - {"runs"}))
    return {table: (f"{table}:{fingerprint}", builders[table]) for table in ordered if table in builders}


def suite_parameters(record: RunRecord) -> dict[str, Any]:
    """The run-specific values the suites refer to with ``$PARAMETER``."""
    return {"model_ids": [record.model_id], "revisions": [record.revision]}


def thresholds(settings: Settings) -> dict[str, Any]:
    """The settings a validation depends on (recorded with its result)."""
    return {name: getattr(settings, name) for name in type(settings).model_fields if name.startswith("validation_")}


def _runs(tables: set[str], settings: Settings) -> list[Expectation]:
    gxe = gx_expectations()
    versions = list(
        dict.fromkeys([*settings.validation_required_versions, *(["lm_eval"] if "accuracy" in tables else [])])
    )
    return [
        gxe.ExpectTableRowCountToEqual(value=1, description="one runs row"),
        *not_null("runs", ["run_id", "model_id", "revision", "logical_date", "status", "source", "versions"]),
        gxe.ExpectColumnValuesToMatchRegex(
            column="revision",
            regex=settings.validation_revision_pattern,
            description="revision is a full commit SHA (40 lowercase hex characters)",
        ),
        *[
            gxe.ExpectColumnValuesToNotBeNull(
                column=f"{CHECK_PREFIX}version_{name}", description=f"versions.{name} is recorded"
            )
            for name in versions
        ],
    ]


def _accuracy(expected: Expected, settings: Settings) -> list[Expectation]:
    gxe = gx_expectations()
    bounded = ", ".join(settings.validation_bounded_metrics)
    suite: list[Expectation] = [
        *common(
            "accuracy",
            ["run_id", "model_id", "revision", "suite", "task", "metric", "filter", "value", "n_samples"],
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["run_id", "task", "metric", "filter"],
            description="one row per (run_id, task, metric, filter): no duplicated rows",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="value", min_value=-FINITE_MAX, max_value=FINITE_MAX, description="value is finite"
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column=f"{CHECK_PREFIX}bounded_value",
            min_value=0,
            max_value=1,
            description=f"value is in [0, 1] for accuracy-like metrics ({bounded})",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="stderr", min_value=0, max_value=FINITE_MAX, description="stderr is >= 0 and finite, or null"
        ),
        gxe.ExpectColumnValuesToBeBetween(column="n_samples", min_value=1, description="n_samples > 0"),
    ]
    if expected.n_samples:
        suite.append(
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="n_samples",
                column_B=f"{CHECK_PREFIX}expected_n_samples",
                ignore_row_if="neither",
                description="n_samples equals what the suite asked for",
            )
        )
    if expected.tasks:
        suite.append(
            gxe.ExpectColumnDistinctValuesToContainSet(
                column="task", value_set=expected.tasks, description="every task of the suite has rows"
            )
        )
    wanted = [metric_key(task, key) for task, keys in sorted(expected.metrics.items()) for key in keys]
    if wanted:
        suite.append(
            gxe.ExpectColumnDistinctValuesToContainSet(
                column=f"{CHECK_PREFIX}task_metric",
                value_set=wanted,
                description="every task/metric/filter lm-eval reported has a row (none dropped)",
            )
        )
    return suite


def _accuracy_samples(expected: Expected, *, with_accuracy: bool) -> list[Expectation]:
    gxe = gx_expectations()
    key = f"{CHECK_PREFIX}sample_key"
    suite: list[Expectation] = [
        *common(
            "accuracy_samples",
            ["run_id", "model_id", "revision", "suite", "task", "doc_id", "doc_hash", "metric", "filter", "value"],
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["run_id", "task", "doc_id", "metric", "filter"],
            description="one row per (run_id, task, doc_id, metric, filter): no duplicated rows",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="value", min_value=-FINITE_MAX, max_value=FINITE_MAX, description="value is finite"
        ),
    ]
    if expected.samples:
        suite += [
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A=f"{CHECK_PREFIX}key_rows",
                column_B=f"{CHECK_PREFIX}expected_rows",
                ignore_row_if="either_value_is_missing",
                description="rows per (task, metric, filter) == lm-eval's sample count",
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column=f"{CHECK_PREFIX}expected_rows",
                description="every (task, metric, filter) with rows is one lm-eval logged",
            ),
            gxe.ExpectColumnDistinctValuesToContainSet(
                column=key,
                value_set=sorted(expected.sample_keys),
                description="every (task, metric, filter) lm-eval logged has rows",
            ),
        ]
    if with_accuracy:
        suite += [
            gxe.ExpectColumnValuesToBeInSet(
                column=f"{CHECK_PREFIX}has_aggregate",
                value_set=[True],
                description="every (task, metric, filter) has its accuracy row",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column=f"{CHECK_PREFIX}mean_error",
                min_value=0,
                max_value=MEAN_TOLERANCE,
                description=f"mean of value == the stored aggregate (mean-aggregated metrics, to {MEAN_TOLERANCE:g})",
            ),
        ]
    return suite


def metric_key(task: str, lm_eval_key: str) -> str:
    """``task/metric/filter`` from lm-eval's ``metric,filter`` key, as failures name a missing row."""
    metric, _, filter_ = lm_eval_key.partition(",")
    return f"{task}/{metric}/{filter_ or 'none'}"


def decisions_suite() -> list[Expectation]:
    """The ``decisions`` rows of one challenger run (derived: validated before :meth:`Warehouse.write_table`).

    ``check_criteria_valid``: the criteria JSON is a list of named criteria with a known status;
    ``check_outcome_consistent``: the outcome is what the statuses imply (reject iff one failed, ...).
    """
    gxe = gx_expectations()
    keys = ["run_id", "decision_id", "model_id", "revision", "champion", "policy_name", "policy_version", "outcome"]
    return [
        *common("decisions", [*keys, "reason", "criteria", "decided_at"]),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["run_id", "decision_id"], description="one row per (run_id, decision_id)"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="outcome", value_set=list(DECISION_OUTCOMES), description="outcome is promote, hold or reject"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="approval_outcome", value_set=list(APPROVAL_OUTCOMES), description="approval outcome known or null"
        ),
        *[
            gxe.ExpectColumnValuesToBeBetween(
                column=column, min_value=0, max_value=FINITE_MAX, description=f"{column} >= 0 and finite, or null"
            )
            for column in ("challenger_monthly_usd", "champion_monthly_usd")
        ],
        *[
            gxe.ExpectColumnValuesToBeInSet(column=f"{CHECK_PREFIX}{name}", value_set=[True], description=text)
            for name, text in (
                ("criteria_valid", "criteria is a JSON list of named criteria with status pass, fail or inconclusive"),
                ("outcome_consistent", "outcome follows from the statuses (reject: one failed; hold: one unsure)"),
                ("not_self", "a challenger is never its own champion (champion_run_id != run_id)"),
            )
        ],
    ]
