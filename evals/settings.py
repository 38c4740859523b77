"""Typed settings (env prefix ``EVALS_``), read at run time — never at DAG parse time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a run can be configured with. ``EVALS_<FIELD>`` sets a field, e.g. ``EVALS_WAREHOUSE``."""

    model_config = SettingsConfigDict(env_prefix="EVALS_", extra="forbid", validate_default=True)

    # --- warehouse / object storage ---
    warehouse: str = Field(
        "file://./warehouse",
        description="Root URI of the warehouse (Iceberg tables' data and metadata): file:///abs/path, "
        "file://./rel/path or s3://bucket/prefix.",
    )
    s3_endpoint: str | None = Field(
        None, description="S3 endpoint URL for non-AWS stores, e.g. http://127.0.0.1:8333 (SeaweedFS, MinIO)."
    )
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_conn_id: str | None = Field(
        None,
        description="Airflow connection id (AWS type) holding S3 credentials and, in its extra, endpoint_url. "
        "When unset, credentials come from the standard AWS environment/credential chain.",
    )
    s3_access_key_id: SecretStr | None = Field(None, description="Explicit S3 access key (else the AWS chain).")
    s3_secret_access_key: SecretStr | None = Field(None, description="Explicit S3 secret key.")
    compact_after_days: int = Field(
        7, ge=0, description="Partitions older than this many days are compacted by the analytics DAG."
    )

    # --- Iceberg catalog ---
    catalog_uri: str | None = Field(
        None,
        description="Iceberg catalog: a SQLAlchemy URL (sqlite:////abs/catalog.db, "
        "postgresql+psycopg2://user:pw@host/db: the JDBC catalog layout Trino/Spark open) or a REST catalog "
        "(http(s)://...). Unset: SQLite at <warehouse>/_catalog.db (file:// warehouses only).",
    )
    catalog_name: str = Field(
        "evals", description="Catalog name; Trino/Spark JDBC catalogs must use the same name to see the tables."
    )
    catalog_namespace: str = Field("evals", description="Namespace of the published tables.")
    catalog_quarantine_namespace: str = Field(
        "evals_quarantine", description="Namespace of quarantined runs (same schemas; never read by published views)."
    )
    catalog_properties: dict[str, str] = Field(
        default_factory=dict,
        description="More catalog properties, JSON object (e.g. a REST catalog's warehouse, scope, oauth2-server-uri).",
    )
    catalog_credential: SecretStr | None = Field(
        None, description="REST catalog credential ('client_id:client_secret') or token; never logged."
    )
    commit_retries: int = Field(
        10, ge=0, description="Retries of an Iceberg commit that lost a race with another writer (backoff doubles)."
    )
    snapshot_retention_hours: float = Field(
        72.0,
        gt=0,
        description="Snapshots older than this are expired and files no snapshot references are deleted after it "
        "(a reader pinned to a snapshot keeps working this long).",
    )

    # --- Airflow routing ---
    schedule: str = Field("0 2 * * *", description="Cron schedule of the nightly DAG (UTC).")
    gpu_queue: str = Field("gpu", description="Celery queue of GPU workers (serve, accuracy, latency tasks).")
    gpu_pool: str = Field("gpu", description="Airflow pool limiting concurrent GPU tasks (slots = GPUs).")
    task_retries: int = Field(2, ge=0, description="Retries of a task that raised a TransientError.")
    task_retry_delay_s: float = Field(
        30.0, gt=0, description="Delay before a task's first retry (it doubles each retry, up to 15 minutes)."
    )

    # --- local state ---
    cache_dir: Path = Field(Path(".cache/evals"), description="Materialized checkpoints, lm-eval request cache.")
    manifest_cache_dir: Path | None = Field(
        None,
        description="Decoded Iceberg manifests and commit records, reused by every later open of the warehouse "
        "(default: <cache_dir>/iceberg-manifests).",
    )

    # --- leaderboard ---
    leaderboard_min_goodput: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="A latency load level is a leaderboard candidate only if this share of requests met the SLO.",
    )

    # --- validation ---
    validation_max_failure_rate: float = Field(
        0.05, ge=0.0, le=1.0, description="Largest share of failed requests a latency load level may have."
    )
    validation_max_latency_ms: float = Field(
        600_000.0, gt=0, description="Largest plausible latency statistic (ms); also what rules out inf."
    )
    validation_bounded_metrics: list[str] = Field(
        [
            "acc",
            "acc_norm",
            "exact_match",
            "f1",
            "mc1",
            "mc2",
            "em",
            "pass@1",
            "brier_score",
            "refusal_rate",
            "over_refusal_rate",
        ],
        description="Accuracy metrics whose values must lie in [0, 1] (JSON list in the environment).",
    )
    validation_revision_pattern: str = Field(
        r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$",
        description="Regex a run's revision must match: a 40-hex commit SHA (or a 64-hex content hash).",
    )
    validation_required_versions: list[str] = Field(
        ["checkpoint_evals"],
        description="Keys of runs.versions that must be set (lm_eval too with accuracy rows).",
    )
    validation_sample_rows: int = Field(20, ge=1, description="Offending rows kept per failed expectation.")
    validation_data_docs: bool = Field(True, description="Write GX Data Docs under <warehouse>/_reports/validation/.")

    # --- checkpoints ---
    watchlist: Path | None = Field(
        None, description="Watch-list YAML of checkpoint sources; unset: the shipped evals/config/watchlist.yaml."
    )
    checkpoint_max_bytes: int = Field(
        60 * 1024**3, ge=1, description="Refuse to materialize a checkpoint whose allowed files exceed this size."
    )
    checkpoint_max_attempts: int = Field(
        3, ge=1, description="A checkpoint whose runs failed this many times is reported, no longer rediscovered."
    )
    trust_remote_code_allowlist: list[str] = Field(
        default_factory=list,
        description="Exact 'model_id@commit_sha' entries allowed to ship custom code (auto_map); JSON list in env.",
    )
    hf_endpoint: str | None = Field(None, description="Hugging Face Hub URL; unset: HF_ENDPOINT, else the Hub.")
    hf_token: SecretStr | None = Field(None, description="Hub token; else the Airflow connection, else HF_TOKEN.")
    hf_conn_id: str | None = Field(None, description="Airflow connection id whose password is a Hub token.")
    hf_max_attempts: int = Field(5, ge=1, description="Attempts of a Hub call on 429/5xx/network errors.")
    hf_backoff_s: float = Field(1.0, ge=0, description="First wait between Hub attempts; doubles each time.")
    hf_max_wait_s: float = Field(60.0, ge=0, description="Cap of one wait, including a server's Retry-After.")

    # --- accuracy ---
    accuracy_device: str | None = Field(
        None, description="torch device of the hf backend; unset: cuda if any, else cpu."
    )
    accuracy_dtype: str = Field("auto", description="Weights dtype (hf, vllm); auto: bfloat16 on GPU, float32 on CPU.")
    accuracy_batch_size: int | None = Field(None, ge=1, description="Overrides the suite's batch size when set.")
    accuracy_vllm_gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vLLM gpu_memory_utilization.")
    accuracy_vllm_tensor_parallel_size: int = Field(1, ge=1, description="vLLM tensor_parallel_size (GPUs per model).")
    accuracy_vllm_max_model_len: int | None = Field(None, ge=1, description="vLLM max_model_len; unset: the model's.")
    accuracy_server_concurrency: int = Field(4, ge=1, description="Concurrent requests to an OpenAI-compatible server.")
    accuracy_server_timeout_s: float = Field(300.0, gt=0, description="Timeout of one request to a model server.")
    accuracy_progress: Literal["auto", "bars", "log"] = Field(
        "auto", description="Progress display: tqdm bars, or log lines (auto: log lines under Airflow)."
    )
    accuracy_progress_every_s: float = Field(30.0, gt=0, description="Seconds between progress log lines.")

    # --- latency ---
    latency_backend: Literal["auto", "vllm", "transformers"] = Field(
        "auto", description="Server for a checkpoint: auto = vLLM when a GPU and vllm are present, else transformers."
    )
    latency_ready_timeout_s: float = Field(900.0, gt=0, description="Wait this long for a launched server.")
    latency_scenario_dir: Path | None = Field(None, description="Extra folder of scenario YAMLs, searched first.")
    latency_gpu_hour_usd: float | None = Field(None, ge=0, description="Overrides the scenario's GPU-hour price.")
    latency_gpu_count: int | None = Field(
        None, ge=1, description="GPUs behind an external endpoint (priced in USD per 1M tokens); default 1."
    )
    latency_endpoint_ignore_eos: bool = Field(
        False, description="Send ignore_eos to external endpoints (vLLM accepts it; transformers serve rejects it)."
    )
    vllm_dtype: str = Field("auto", description="vllm serve --dtype.")
    vllm_max_model_len: int | None = Field(None, gt=0, description="vllm serve --max-model-len.")
    vllm_gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="vllm serve --gpu-memory-utilization.")
    vllm_tensor_parallel_size: int = Field(1, ge=1, description="vllm serve --tensor-parallel-size (GPUs priced).")
    vllm_extra_args: list[str] = Field(default_factory=list, description="More vllm serve flags, JSON list.")
    transformers_serve_dtype: str = Field("auto", description="transformers serve --dtype on CPU workers.")
    transformers_serve_device: str = Field(
        "cpu", description="transformers serve --device (cpu; cuda where a GPU worker has no vLLM, e.g. a GPU check)."
    )

    # --- comparison ---
    compare_baselines: list[str] = Field(
        default_factory=list,
        description="Baseline model ids every run is also compared with (e.g. production's model); JSON list in env.",
    )
    compare_alpha: float = Field(0.05, gt=0, lt=1, description="Two-sided significance level of comparison CIs.")
    compare_min_effect_accuracy_points: float = Field(
        1.0, ge=0, description="Smallest accuracy change that counts, in absolute percentage points."
    )
    compare_min_effect_latency: float = Field(
        0.05, ge=0, description="Smallest relative change of P95 TTFT/E2E or throughput that counts (0.05 = 5 %)."
    )
    compare_min_effect_cost: float = Field(
        0.05, ge=0, description="Smallest relative change of USD per 1M output tokens that counts."
    )
    compare_min_pairs: int = Field(
        30, ge=2, description="Matched questions needed before an accuracy comparison is called paired."
    )
    compare_night_cv: float = Field(
        0.10,
        gt=0,
        description="Night-to-night CV of a latency/cost series assumed while its history is short (0.10 = 10 %).",
    )
    compare_night_min_history: int = Field(
        5, ge=2, description="Re-measurements of unchanged revisions needed to estimate a series' night-to-night CV."
    )
    compare_night_history: int = Field(
        14, ge=1, description="Nights of the baseline revision averaged into a latency/cost baseline (and its noise)."
    )
    compare_primary_alpha_share: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="Share of a night's alpha (weighted Benjamini-Hochberg) given to its primary rows: each model's "
        "headline accuracy and P95 TTFT at the reference level; the other rows share the rest (0: plain BH).",
    )
    compare_bootstrap_resamples: int = Field(2000, ge=100, description="Bootstrap resamples of latency CIs.")
    compare_seed: int = Field(0, description="Seed of the latency bootstrap (reruns give identical CIs).")
    fail_on_regression: bool = Field(
        False, description="Fail the compare step (a terminal error) when any regression is found."
    )
    notify_backend: str = Field(
        "auto", description="Regression notifier: auto (webhook when configured, else log) | log | webhook | mod:Class."
    )
    notify_webhook_url: SecretStr | None = Field(None, description="Slack-style webhook URL (JSON POST).")
    notify_conn_id: str | None = Field(
        None, description="Airflow connection of the webhook: extra webhook_url, or host (+ password as the path)."
    )
    notify_timeout_s: float = Field(10.0, gt=0, description="Timeout of one webhook POST.")

    # --- the serving decision ---
    serving: Path | None = Field(
        None,
        description="Serving configuration YAML (champion, traffic, decision policy); unset: no decisions are made. "
        "Example: the shipped evals/config/serving.yaml.",
    )
    serving_approval_url: str | None = Field(
        None,
        description="Link to a pending approval shown beside a promote decision, with {dag_id}, {dag_run_id} and "
        "{decision_id} filled in (e.g. Airflow's human-in-the-loop page).",
    )

    approval_timeout_s: float = Field(
        24 * 3600.0,
        gt=0,
        description="Seconds a promote waits for a human's approval in Airflow (default 24 h); then the default "
        "answer applies: the challenger is held (recorded as timed_out) and the next night compares again.",
    )
    approval_in_test_runs: bool = Field(
        False,
        description="Open the approval in `airflow dags test` runs too. Off: such a run (the demo) records the "
        "promote as timed_out at once, since without a scheduler nothing would ever time the approval out.",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("warehouse")
    @classmethod
    def _warehouse_scheme(cls, value: str) -> str:
        if not (value.startswith("file://") or value.startswith("s3://")):
            raise ValueError(f"EVALS_WAREHOUSE must start with file:// or s3://, got {value!r}")
        return value


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment now (call inside tasks, not at import time)."""
    from pydantic import ValidationError

    from evals.errors import ConfigError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"EVALS_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
