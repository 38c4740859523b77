"""The suites of the latency tables: one row per load level (percentiles ordered, SLO goodput consistent) and one
per request (timestamps ordered, each sample on a known level)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evals.schemas import LATENCY_METRICS, LATENCY_STATS
from evals.validation.expectations import FINITE_MAX, common, gx_expectations
from evals.validation.frames import CHECK_PREFIX

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

    from evals.settings import Settings
    from evals.validation.expected import Expected

# Percentile order per latency metric: each pair is (higher, lower).
PERCENTILE_ORDER = (("p90", "p50"), ("p95", "p90"), ("p99", "p95"))


def latency_suite(expected: Expected, settings: Settings, *, with_samples: bool) -> list[Expectation]:
    gxe = gx_expectations()
    stats = [f"{metric}_{stat}_ms" for metric in LATENCY_METRICS for stat in LATENCY_STATS]
    level = f"{CHECK_PREFIX}level"
    suite: list[Expectation] = [
        *common(
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
        # Trials of the level and the between-trial spread of the judged series.
        ("n_trials", 1, None),
        *((f"{series}_trial_cv", 0, FINITE_MAX) for series in ("ttft_p95", "e2e_p95", "output_tokens_per_s")),
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
        for high, low in PERCENTILE_ORDER:
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
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A=f"{CHECK_PREFIX}sample_trials",
                column_B=f"{CHECK_PREFIX}n_trials",
                description="the level's latency_samples come from n_trials trials (null n_trials: one)",
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


_TIMESTAMP_ORDER = (("sent_s", "first_token_s"), ("first_token_s", "finished_s"), ("sent_s", "finished_s"))


def samples_suite(*, with_latency: bool) -> list[Expectation]:
    gxe = gx_expectations()
    suite: list[Expectation] = [
        *common(
            "latency_samples",
            ["run_id", "model_id", "revision", "scenario", "load_type", "load", "request_index", "ok"],
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["run_id", "scenario", f"{CHECK_PREFIX}level", "request_index"],
            description="one row per request: no duplicated rows",
        ),
        gxe.ExpectColumnValuesToBeBetween(column="request_index", min_value=0, description="request_index >= 0"),
        gxe.ExpectColumnValuesToBeBetween(column="trial", min_value=0, description="trial >= 0 or null"),
        gxe.ExpectColumnValuesToBeBetween(
            column="sent_s", min_value=-FINITE_MAX, max_value=FINITE_MAX, description="sent_s is finite"
        ),
        *[
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=later,
                column_B=earlier,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                description=f"timestamps ordered: {earlier} <= {later}",
            )
            for earlier, later in _TIMESTAMP_ORDER
        ],
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
