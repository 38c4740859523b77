"""The GX expectation suites of every table, built in code from settings and what the run was asked for."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evals.schemas import APPROVAL_OUTCOMES, DECISION_OUTCOMES, LATENCY_METRICS, LATENCY_STATS, column_names
from evals.validation.expected import Expected
from evals.validation.frames import CHECK_PREFIX

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

    from evals.settings import Settings
    from evals.warehouse import RunRecord

# The largest finite float: an upper bound that lets every finite value through and stops inf.
FINITE_MAX = sys.float_info.max

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

# Percentile order per latency metric: each pair is (higher, lower).
_PERCENTILE_ORDER = (("p90", "p50"), ("p95", "p90"), ("p99", "p95"))


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
        "latency": lambda: _latency(expected, settings, with_samples="latency_samples" in tables),
        "latency_samples": lambda: _samples(with_latency="latency" in tables),
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


def _gxe() -> Any:
    from evals.validation.runtime import quiet_gx

    quiet_gx()
    import great_expectations.expectations as gxe

    return gxe


def _not_null(table: str, columns: list[str]) -> list[Expectation]:
    gxe = _gxe()
    return [
        gxe.ExpectColumnValuesToNotBeNull(column=column, description=f"{column} is present (not null/NaN)")
        for column in columns
    ]


def _common(table: str, keys: list[str]) -> list[Expectation]:
    gxe = _gxe()
    return [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=column_names(table), exact_match=False, description=f"every {table} column is present"
        ),
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description=f"{table} has rows"),
        *_not_null(table, keys),
        gxe.ExpectColumnValuesToBeInSet(
            column="model_id", value_set={"$PARAMETER": "model_ids"}, description="model_id is the run's model"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="revision", value_set={"$PARAMETER": "revisions"}, description="revision is the run's revision"
        ),
    ]


def _runs(tables: set[str], settings: Settings) -> list[Expectation]:
    gxe = _gxe()
    versions = list(
        dict.fromkeys([*settings.validation_required_versions, *(["lm_eval"] if "accuracy" in tables else [])])
    )
    return [
        gxe.ExpectTableRowCountToEqual(value=1, description="one runs row"),
        *_not_null("runs", ["run_id", "model_id", "revision", "logical_date", "status", "source", "versions"]),
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
    gxe = _gxe()
    bounded = ", ".join(settings.validation_bounded_metrics)
    suite: list[Expectation] = [
        *_common(
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
    gxe = _gxe()
    key = f"{CHECK_PREFIX}sample_key"
    suite: list[Expectation] = [
        *_common(
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


def _latency(expected: Expected, settings: Settings, *, with_samples: bool) -> list[Expectation]:
    gxe = _gxe()
    stats = [f"{metric}_{stat}_ms" for metric in LATENCY_METRICS for stat in LATENCY_STATS]
    level = f"{CHECK_PREFIX}level"
    suite: list[Expectation] = [
        *_common(
            "latency",
            [
                "run_id",
                "model_id",
                "revision",
                "scenario",
                "load_type",
                "load",
                "n_requests",
                "n_failed",
                "duration_s",
                *stats,
                "output_tokens_per_s",
                "requests_per_s",
            ],
        ),
        gxe.ExpectColumnValuesToBeUnique(column=level, description="one row per load level: no duplicated rows"),
        gxe.ExpectColumnValuesToBeBetween(column="n_requests", min_value=1, description="n_requests > 0"),
        gxe.ExpectColumnValuesToBeBetween(column="n_failed", min_value=0, description="n_failed >= 0"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="n_requests", column_B="n_failed", or_equal=True, description="n_failed <= n_requests"
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column=f"{CHECK_PREFIX}failure_rate",
            min_value=0,
            max_value=settings.validation_max_failure_rate,
            description=f"failure rate n_failed/n_requests <= {settings.validation_max_failure_rate:g}",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="duration_s",
            min_value=0,
            max_value=FINITE_MAX,
            strict_min=True,
            description="duration_s > 0 and finite",
        ),
        *[
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=0,
                max_value=FINITE_MAX,
                strict_min=True,
                description=f"throughput {column} > 0 and finite",
            )
            for column in ("output_tokens_per_s", "requests_per_s")
        ],
        gxe.ExpectColumnValuesToBeBetween(
            column="goodput", min_value=0, max_value=1, description="goodput is a share in [0, 1] or null"
        ),
    ]
    # Client saturation and the server's own view: null when not measured (a server without /metrics).
    bounds: tuple[tuple[str, float, float | None], ...] = (
        ("client_processes", 1, None),
        ("client_send_lag_p99_ms", 0, FINITE_MAX),
        ("client_loop_lag_p99_ms", 0, FINITE_MAX),
        ("client_cpu_share", 0, FINITE_MAX),
        ("server_metrics_scrapes", 1, None),
        ("server_requests_running_mean", 0, FINITE_MAX),
        ("server_requests_waiting_mean", 0, FINITE_MAX),
        ("server_kv_cache_usage_mean", 0, 1),
        ("server_prefix_cache_hit_rate", 0, 1),
        ("server_queue_time_mean_ms", 0, FINITE_MAX),
        ("server_ttft_mean_ms", 0, FINITE_MAX),
        # Predictability: a tail ratio is >= 1 (P99 >= P50), a jitter >= 0; rates and their CIs are shares.
        ("ttft_tail_ratio", 1, FINITE_MAX),
        ("e2e_tail_ratio", 1, FINITE_MAX),
        ("itl_jitter_ms", 0, FINITE_MAX),
        ("n_timeouts", 0, None),
        *((f"{kind}_rate{end}", 0, 1) for kind in ("error", "timeout") for end in ("", "_ci_low", "_ci_high")),
        # A prompt-length sweep's context length (a level key) and the prompt length the server reported.
        ("input_tokens", 1, None),
        ("prompt_tokens_p50", 0, FINITE_MAX),
    )
    for name, lowest, highest in bounds:
        suite.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=name,
                min_value=lowest,
                max_value=highest,
                description=f"{name} >= {lowest:g}"
                + (f" and <= {highest:g}" if highest is not None else "")
                + " or null",
            )
        )
    for column in stats:
        # Tokens that arrive in one streamed chunk have an inter-token gap of 0 ms; every other stat is > 0.
        strict = not column.startswith("itl_")
        suite.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=0,
                max_value=settings.validation_max_latency_ms,
                strict_min=strict,
                description=f"{column} is finite, {'>' if strict else '>='} 0 and <= "
                f"{settings.validation_max_latency_ms:g} ms",
            )
        )
    for metric in LATENCY_METRICS:
        for high, low in _PERCENTILE_ORDER:
            suite.append(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=f"{metric}_{high}_ms",
                    column_B=f"{metric}_{low}_ms",
                    or_equal=True,
                    description=f"{metric} percentiles ordered: {metric}_{low}_ms <= {metric}_{high}_ms",
                )
            )
    ordered = [("n_failed", "n_timeouts")]
    for kind in ("error", "timeout"):
        ordered += [(f"{kind}_rate", f"{kind}_rate_ci_low"), (f"{kind}_rate_ci_high", f"{kind}_rate")]
    for high, low in ordered:
        suite.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=high,
                column_B=low,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                description=f"{low} <= {high} (or null)",
            )
        )
    if with_samples:
        suite += [
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A=f"{CHECK_PREFIX}sample_rows",
                column_B="n_requests",
                description="latency_samples rows of the level == n_requests",
            ),
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A=f"{CHECK_PREFIX}sample_failed",
                column_B="n_failed",
                description="failed latency_samples of the level == n_failed",
            ),
        ]
    if expected.requests:
        suite += [
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="n_requests",
                column_B=f"{CHECK_PREFIX}expected_requests",
                ignore_row_if="neither",
                description="n_requests equals the requests issued at that level",
            ),
            gxe.ExpectColumnDistinctValuesToContainSet(
                column=f"{CHECK_PREFIX}load_level",
                value_set=sorted(expected.levels),
                description="every load level issued has a row",
            ),
        ]
    return suite


def _samples(*, with_latency: bool) -> list[Expectation]:
    gxe = _gxe()
    suite: list[Expectation] = [
        *_common(
            "latency_samples",
            ["run_id", "model_id", "revision", "scenario", "load_type", "load", "request_index", "ok"],
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["run_id", "scenario", f"{CHECK_PREFIX}level", "request_index"],
            description="one row per request: no duplicated rows",
        ),
        gxe.ExpectColumnValuesToBeBetween(column="request_index", min_value=0, description="request_index >= 0"),
        gxe.ExpectColumnValuesToBeBetween(
            column="sent_s", min_value=-FINITE_MAX, max_value=FINITE_MAX, description="sent_s is finite"
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="first_token_s",
            column_B="sent_s",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            description="timestamps ordered: sent_s <= first_token_s",
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="finished_s",
            column_B="first_token_s",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            description="timestamps ordered: first_token_s <= finished_s",
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="finished_s",
            column_B="sent_s",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            description="timestamps ordered: sent_s <= finished_s",
        ),
        *[
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, description=f"{column} >= 0")
            for column in ("prompt_tokens", "output_tokens")
        ],
    ]
    if with_latency:
        suite.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=f"{CHECK_PREFIX}level_known",
                value_set=[True],
                description="every sample belongs to a load level of the latency table",
            )
        )
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
    gxe = _gxe()
    keys = ["run_id", "decision_id", "model_id", "revision", "champion", "policy_name", "policy_version", "outcome"]
    return [
        *_common("decisions", [*keys, "reason", "criteria", "decided_at"]),
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
