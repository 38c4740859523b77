"""The data contract: every warehouse table's columns, versions and enumerations, as Arrow schemas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from evals.errors import SchemaViolation

if TYPE_CHECKING:
    import pyarrow as pa

# Bump a table's version when one of its columns is added/changed; readers pass the current schema so older files
# read with nulls. SCHEMA_VERSION is the version of every table not listed in TABLE_VERSIONS.
SCHEMA_VERSION = 1
TABLE_VERSIONS: dict[str, int] = {
    "change_points": 2,  # 2: status (tentative | confirmed), noise_sd
    "comparisons": 3,  # 2: method, n_pairs, n_fixed, n_broken, p_value, mde; 3: p_adjusted, night noise, notes
    "latency": 4,  # 2: client_*, notes, server_*; 3: predictability (tail ratios, jitter, error/timeout rates)
    #                and the prompt-length sweep's level key input_tokens (+ prompt_tokens_p50); 4: n_trials, *_trial_cv
    "latency_samples": 3,  # 2: input_tokens (the level key of a prompt-length sweep); 3: trial
}

# Nullable columns a writer may leave out (conform fills them with nulls): keys that only some scenarios use.
OMITTABLE: dict[str, tuple[str, ...]] = {
    "latency": ("input_tokens", "n_trials", "ttft_p95_trial_cv", "e2e_p95_trial_cv", "output_tokens_per_s_trial_cv"),
    "latency_samples": ("input_tokens", "trial"),
}

PARTITION_COLUMN = "eval_date"  # Hive partition key, lives in the path (eval_date=YYYY-MM-DD), not in files

# In order of precedence: when a run has records in several states, the first one here is the one that counts.
RUN_STATUSES = ("published", "quarantined", "failed")
# What a comparison concluded (docs/verdicts.md): a change (regression | improvement: BH-adjusted p passes and the
# effect is practical), or why not (equivalent: CI inside the practical margin; no_change: inconclusive; noisy: the
# series' night-to-night noise hides the practical effect; insufficient_data: no test possible), or no_baseline.
VERDICTS = ("regression", "improvement", "equivalent", "no_change", "noisy", "insufficient_data", "no_baseline")
COMPARISON_METHODS = ("paired", "stratified", "clustered", "unpaired", "bootstrap", "trials", "none")
COMPARISON_KINDS = ("previous_revision", "previous_run", "baseline_model")
LOAD_TYPES = ("concurrency", "rate")
LATENCY_METRICS = ("ttft", "tpot", "itl", "e2e")
LATENCY_STATS = ("mean", "p50", "p90", "p95", "p99")
DECISION_OUTCOMES = ("promote", "hold", "reject")
APPROVAL_OUTCOMES = ("pending", "approved", "rejected", "timed_out", "manual")

TABLES = (
    "runs",
    "accuracy",
    "accuracy_samples",
    "latency",
    "latency_samples",
    "comparisons",
    "change_points",
    "decisions",
)
DATA_TABLES = tuple(t for t in TABLES if t != "runs")  # a run's rows; ``runs`` is the commit record
# Computed from published runs and added to a run after its publication (Warehouse.write_table), not by write_run.
DERIVED_TABLES = ("comparisons", "change_points", "decisions")
SAMPLE_TEXT_CHARS = 300  # accuracy_samples keeps this much of each response and target: enough to see what changed

# Fields of the runs table's struct columns (RunRecord fills missing ones with null).
HARDWARE_FIELDS = ("gpu_name", "gpu_count", "gpu_driver", "cpu")
VERSION_FIELDS = ("checkpoint_evals", "python", "lm_eval", "transformers", "torch", "vllm", "great_expectations")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of _ARROW_TYPES
    nullable: bool = True
    doc: str = ""


def _c(name: str, type_: str, nullable: bool = True, doc: str = "") -> Column:
    return Column(name, type_, nullable, doc)


_KEY = [
    _c("schema_version", "int32", False, "Version of this table's schema the row was written with."),
    _c("run_id", "string", False, "Deterministic hash of model, revision, suite, scenario, logical date."),
]
_MODEL = [
    _c("model_id", "string", False, "Model id, e.g. HuggingFaceTB/SmolLM2-135M-Instruct."),
    _c("revision", "string", False, "Full commit SHA (40 hex) or content hash of the checkpoint."),
    _c("eval_date", "date32", False, "UTC date of the logical date; Hive partition key."),
]


def _latency_stat_columns() -> list[Column]:
    return [
        _c(f"{metric}_{stat}_ms", "float64", True, f"{metric.upper()} {stat} in milliseconds.")
        for metric in LATENCY_METRICS
        for stat in LATENCY_STATS
    ]


# The load generator's own state during a level, and the server's Prometheus view of it (null when the server
# exposes no /metrics). Nullable, so rows of schema version 1 read with nulls.
LATENCY_LEVEL_EXTRA_COLUMNS = [
    _c("client_processes", "int32", True, "Load generator processes that sent this level."),
    _c("client_send_lag_p99_ms", "float64", True, "P99 of sent - scheduled: requests the client sent late."),
    _c("client_loop_lag_p99_ms", "float64", True, "P99 event-loop lag of the load generator during the level."),
    _c("client_cpu_share", "float64", True, "Load generator CPU seconds / level seconds, per process (1 = a core)."),
    _c("notes", "string", True, "Warnings about this level, e.g. the client limited the measurement."),
    _c("server_metrics_scrapes", "int32", True, "Scrapes of the server's /metrics during the level; null: none."),
    _c("server_requests_running_mean", "float64", True, "Mean of vllm:num_requests_running over the scrapes."),
    _c("server_requests_waiting_mean", "float64", True, "Mean of vllm:num_requests_waiting over the scrapes."),
    _c("server_kv_cache_usage_mean", "float64", True, "Mean KV-cache usage (0..1) over the scrapes."),
    _c("server_prefix_cache_hit_rate", "float64", True, "Prefix-cache hits / queries during the level (0..1)."),
    _c("server_queue_time_mean_ms", "float64", True, "Mean request queue time the server saw in the level."),
    _c("server_ttft_mean_ms", "float64", True, "Mean time to first token the server saw in the level."),
]
# How predictable the level's service was (evals.latency.predictability): tails over medians, jitter, and failures
# split into timeouts (the client's per-request limit) and every other error, each with its Wilson 95 % CI.
LATENCY_PREDICTABILITY_COLUMNS = [
    _c("ttft_tail_ratio", "float64", True, "TTFT P99 / P50 of the level's successful requests (1 = all alike)."),
    _c("e2e_tail_ratio", "float64", True, "E2E P99 / P50 of the level's successful requests."),
    _c("itl_jitter_ms", "float64", True, "ITL jitter: P99 - P50 of every inter-token gap of the level (ms)."),
    _c("n_timeouts", "int64", True, "Failed requests that ran past the per-request timeout (part of n_failed)."),
    _c("error_rate", "float64", True, "(n_failed - n_timeouts) / n_requests: failures other than timeouts."),
    _c("error_rate_ci_low", "float64", True, "Wilson 95 % CI of error_rate, lower bound."),
    _c("error_rate_ci_high", "float64", True, "Wilson 95 % CI of error_rate, upper bound."),
    _c("timeout_rate", "float64", True, "n_timeouts / n_requests."),
    _c("timeout_rate_ci_low", "float64", True, "Wilson 95 % CI of timeout_rate, lower bound."),
    _c("timeout_rate_ci_high", "float64", True, "Wilson 95 % CI of timeout_rate, upper bound."),
]
# A prompt-length sweep (the RAG scenario) runs every load at several input lengths: input_tokens is then part of
# the level key (load_type, load, input_tokens); null for scenarios that do not sweep prompt length.
INPUT_TOKENS_COLUMN = _c(
    "input_tokens", "int64", True, "Retrieved-context tokens of a prompt-length sweep's level (a level key); else null."
)
LATENCY_SWEEP_COLUMNS = [
    INPUT_TOKENS_COLUMN,
    _c("prompt_tokens_p50", "float64", True, "Median prompt tokens the server reported (usage); null if none."),
]
# A level run as K independent trials (scenario ``trials``): the row pools them; their spread is stored per series.
LATENCY_TRIAL_COLUMNS = [
    _c("n_trials", "int32", True, "Independent trials the level ran (null: once, before trials existed)."),
    *(
        _c(f"{series}_trial_cv", "float64", True, f"CV of {series} between the level's trials (null: one trial).")
        for series in ("ttft_p95", "e2e_p95", "output_tokens_per_s")
    ),
]
_LEVEL_GROUPS = (
    LATENCY_LEVEL_EXTRA_COLUMNS,
    LATENCY_PREDICTABILITY_COLUMNS,
    LATENCY_SWEEP_COLUMNS,
    LATENCY_TRIAL_COLUMNS,
)
LATENCY_LEVEL_EXTRA = tuple(c.name for group in _LEVEL_GROUPS for c in group)

COLUMNS: dict[str, list[Column]] = {
    "runs": [
        *_KEY,
        _c("dag_id", "string", True, "Airflow DAG id, null when run from the CLI."),
        _c("dag_run_id", "string", True, "Airflow DAG run id."),
        _c("logical_date", "timestamp", False, "Logical date of the run (UTC)."),
        _c("started_at", "timestamp", True),
        _c("finished_at", "timestamp", True),
        _c("status", "string", False, "published | quarantined | failed."),
        *_MODEL,
        _c("source", "string", False, "Checkpoint source: hf, s3, local, package."),
        _c("checkpoint_uri", "string", True),
        _c("dtype", "string", True),
        _c("params", "int64", True, "Number of parameters, when known."),
        _c("backend", "string", True, "hf | vllm | local-completions | ..."),
        _c("hardware", "hardware", True, "gpu_name, gpu_count, gpu_driver, cpu."),
        _c("versions", "versions", True, "Package versions that produced the numbers."),
        _c("suite", "string", True),
        _c("suite_version", "string", True),
        _c("scenario", "string", True),
        _c("scenario_version", "string", True),
        _c("config_hash", "string", True, "Hash over everything that can change a number."),
        _c("config", "string", True, "JSON provenance: seeds, batch size, task hashes, chat template hash..."),
        _c("row_counts", "string", True, "JSON {table: rows} written with this run."),
        _c("error", "string", True, "Why the run failed or was quarantined."),
    ],
    "accuracy": [
        *_KEY,
        *_MODEL,
        _c("suite", "string", False),
        _c("task", "string", False),
        _c("task_group", "string", True, "Parent group of a subtask; null for top-level tasks and groups."),
        _c("task_version", "string", True),
        _c("metric", "string", False, "Metric name, e.g. acc, acc_norm, exact_match."),
        _c("filter", "string", False, "lm-eval filter, e.g. none, strict-match."),
        _c("value", "float64", False),
        _c("stderr", "float64", True, "Standard error; null when unknown (never a string)."),
        _c("n_samples", "int64", True),
        _c("num_fewshot", "int32", True),
        _c("higher_is_better", "bool", True),
    ],
    "accuracy_samples": [
        *_KEY,
        *_MODEL,
        _c("suite", "string", False),
        _c("task", "string", False, "The leaf task that scored the document (a group's subtask)."),
        _c("doc_id", "int64", False, "lm-eval's document index within the task."),
        _c("doc_hash", "string", False, "lm-eval's SHA-256 of the document: pairs questions across runs."),
        _c("prompt_hash", "string", True, "lm-eval's SHA-256 of the first request's prompt."),
        _c("target_hash", "string", True, "lm-eval's SHA-256 of the target."),
        _c("metric", "string", False),
        _c("filter", "string", False),
        _c("aggregation", "string", True, "How lm-eval aggregates the metric over documents (mean, ...)."),
        _c("value", "float64", False, "The document's score (0/1 for accuracy-like metrics)."),
        _c("response", "string", True, f"The filtered response, first {SAMPLE_TEXT_CHARS} characters."),
        _c("target", "string", True, f"The target, first {SAMPLE_TEXT_CHARS} characters."),
    ],
    "latency": [
        *_KEY,
        *_MODEL,
        _c("scenario", "string", False),
        _c("load_type", "string", False, "concurrency (closed loop) | rate (open loop, requests/s)."),
        _c("load", "float64", False, "Concurrency or request rate of this level."),
        _c("n_requests", "int64", False),
        _c("n_failed", "int64", False),
        _c("duration_s", "float64", False),
        *_latency_stat_columns(),
        _c("output_tokens_per_s", "float64", True),
        _c("requests_per_s", "float64", True),
        _c("goodput", "float64", True, "Share of requests meeting the SLO; failed requests count as misses."),
        _c("slo", "string", True, 'JSON SLO definition, e.g. {"ttft_p95_ms": 500}.'),
        _c("gpu_hour_usd", "float64", True),
        _c("gpu_count", "int32", True),
        _c("usd_per_1m_output_tokens", "float64", True),
        *(column for group in _LEVEL_GROUPS for column in group),
    ],
    "latency_samples": [
        *_KEY,
        *_MODEL,
        _c("scenario", "string", False),
        _c("load_type", "string", False),
        _c("load", "float64", False),
        _c("request_index", "int64", False),
        _c("scheduled_s", "float64", True, "Seconds since the level started when the request was due."),
        _c("sent_s", "float64", True),
        _c("first_token_s", "float64", True),
        _c("finished_s", "float64", True),
        _c("prompt_tokens", "int64", True),
        _c("output_tokens", "int64", True),
        _c("itl_ms", "float_list", True, "Gaps between successive streamed tokens (ms)."),
        _c("ok", "bool", False),
        _c("error", "string", True),
        INPUT_TOKENS_COLUMN,
        _c("trial", "int32", True, "Which of the level's trials sent the request (0 first); null: the level ran once."),
    ],
    "comparisons": [
        *_KEY,
        _c("model_id", "string", False),
        _c("revision", "string", False),
        _c("eval_date", "date32", False),
        _c("baseline_run_id", "string", True, "Null when there is no baseline."),
        _c("baseline_model_id", "string", True),
        _c("baseline_revision", "string", True),
        _c("kind", "string", False, "previous_revision | previous_run | baseline_model."),
        _c("metric", "string", False, "e.g. accuracy:arc_easy/acc or latency:ttft_p95_ms@concurrency=8."),
        _c("value", "float64", True),
        _c("baseline_value", "float64", True),
        _c("delta", "float64", True),
        _c("ci_low", "float64", True),
        _c("ci_high", "float64", True),
        _c("alpha", "float64", True),
        _c("verdict", "string", False, " | ".join(VERDICTS) + " (docs/verdicts.md)."),
        _c(
            "method",
            "string",
            True,
            " | ".join(COMPARISON_METHODS) + ": how the CI was obtained (null: v1 rows).",
        ),
        _c("n_pairs", "int64", True, "Questions matched by document hash (paired accuracy comparisons)."),
        _c("n_fixed", "int64", True, "Paired 0/1 questions wrong in the baseline and right now."),
        _c("n_broken", "int64", True, "Paired 0/1 questions right in the baseline and wrong now."),
        _c(
            "p_value",
            "float64",
            True,
            "Test of no change: McNemar (paired 0/1), t or z; null: no test (v1-2: McNemar).",
        ),
        _c("mde", "float64", True, "Minimum detectable effect at alpha and 80 % power, in the metric's units."),
        _c("p_adjusted", "float64", True, "p_value adjusted by Benjamini-Hochberg across the night's tests."),
        _c("night_cv", "float64", True, "Night-to-night CV of the latency/cost series used in the CI."),
        _c("n_history", "int64", True, "Nights of the baseline revision averaged into the latency/cost baseline."),
        _c("tested_with", "string", True, "The row whose test this one shares (cost at an unchanged price)."),
        _c("notes", "string", True, "How the estimate was made or why there is no test, in words."),
    ],
    "change_points": [
        *_KEY,
        _c("model_id", "string", False),
        _c("revision", "string", False, "Revision of the run that closes the analysed series."),
        _c("eval_date", "date32", False),
        _c("suite", "string", True),
        _c("scenario", "string", True),
        _c("series", "string", False, "e.g. accuracy:headline, latency:ttft_p95_ms@concurrency=1, cost:usd_at_slo."),
        _c("method", "string", False, "The detector, e.g. otava-e-divisive."),
        _c("night", "date32", False, "Eval date of the first night after the change."),
        _c("run_id_after", "string", False, "Run of the first night after the change."),
        _c("run_id_before", "string", False, "Run of the last night before the change."),
        _c("revision_before", "string", False),
        _c("revision_after", "string", False),
        _c("n_before", "int64", False, "Nights in the segment before the change."),
        _c("n_after", "int64", False, "Nights in the segment after the change."),
        _c("mean_before", "float64", False),
        _c("mean_after", "float64", False),
        _c("relative_change", "float64", True, "mean_after / mean_before - 1; null when mean_before is 0."),
        _c(
            "p_value",
            "float64",
            False,
            "Significance of the split: Student's t between the winsorized segments, corrected for serial correlation.",
        ),
        _c("noise_sd", "float64", True, "The series' robust night-to-night SD (1.4826 x MAD around its segments)."),
        _c(
            "status",
            "string",
            True,
            "tentative (fewer than 2 nights after the change's first) | confirmed (the new level persisted).",
        ),
        _c("revision_moved", "bool", False, "False: same revision on both sides, so a serving-stack change."),
        _c("cause", "string", False, "revision | serving_stack."),
        _c("provenance_diff", "string", True, "JSON {field: [before, after]} of what changed in the runs rows."),
    ],
    # One row per night and challenger run: the serving decision against the champion's run of the same night.
    "decisions": [
        *_KEY,
        _c("decision_id", "string", False, "Hash of challenger run, champion run and policy name@version."),
        _c("model_id", "string", False, "The challenger's model."),
        _c("revision", "string", False, "The challenger's revision."),
        _c("eval_date", "date32", False),
        _c("suite", "string", True),
        _c("scenario", "string", True),
        _c("champion", "string", False, "The champion as configured (a ref or endpoint:NAME)."),
        _c("champion_run_id", "string", True, "The champion's run of the same night; null: none tonight."),
        _c("champion_model_id", "string", True),
        _c("champion_revision", "string", True),
        _c("policy_name", "string", False),
        _c("policy_version", "string", False),
        _c("outcome", "string", False, "promote | hold | reject."),
        _c("reason", "string", False, "What failed and by how much, or what lacked power and its MDE."),
        _c("criteria", "string", False, "JSON list: name, status, estimate, ci_low, ci_high, limit, mde, evidence."),
        _c("challenger_monthly_usd", "float64", True, "Monthly cost of carrying the traffic with the challenger."),
        _c("champion_monthly_usd", "float64", True, "Monthly cost of carrying the traffic with the champion."),
        _c("decided_at", "timestamp", False),
        _c("approval_url", "string", True, "Where to answer a pending approval (EVALS_SERVING_APPROVAL_URL)."),
        _c("approval_outcome", "string", True, "pending | approved | rejected | timed_out | manual; null: none."),
        _c("approver", "string", True, "Who answered the approval."),
        _c("approved_at", "timestamp", True, "When the approval was answered."),
        _c("approval_reason", "string", True),
    ],
}

ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("runs", "status"): RUN_STATUSES,
    ("latency", "load_type"): LOAD_TYPES,
    ("latency_samples", "load_type"): LOAD_TYPES,
    ("comparisons", "verdict"): VERDICTS,
    ("comparisons", "kind"): COMPARISON_KINDS,
    ("comparisons", "method"): COMPARISON_METHODS,
    ("change_points", "cause"): ("revision", "serving_stack"),
    ("decisions", "outcome"): DECISION_OUTCOMES,
    ("change_points", "status"): ("tentative", "confirmed"),
}


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    types: dict[str, pa.DataType] = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date32": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "float_list": pa.list_(pa.float32()),
        "hardware": pa.struct([(k, pa.int32() if k == "gpu_count" else pa.string()) for k in HARDWARE_FIELDS]),
        "versions": pa.struct([(k, pa.string()) for k in VERSION_FIELDS]),
    }
    return types[name]


def arrow_schema(table: str, *, with_partition: bool = True) -> pa.Schema:
    """The Arrow schema of ``table``; ``with_partition=False`` drops eval_date (what a data file holds)."""
    import pyarrow as pa

    if table not in COLUMNS:
        raise SchemaViolation(table, "-", f"unknown table; known tables: {', '.join(TABLES)}")
    fields = [
        pa.field(c.name, _arrow_type(c.type), nullable=c.nullable, metadata={"doc": c.doc} if c.doc else None)
        for c in COLUMNS[table]
        if with_partition or c.name != PARTITION_COLUMN
    ]
    return pa.schema(fields, metadata={"table": table, "schema_version": str(schema_version(table))})


def schema_version(table: str) -> int:
    """The current schema version of ``table`` (written into every row's ``schema_version``)."""
    return TABLE_VERSIONS.get(table, SCHEMA_VERSION)


def column_names(table: str) -> list[str]:
    return [c.name for c in COLUMNS[table]]
