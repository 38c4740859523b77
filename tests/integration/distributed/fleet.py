"""A fleet night's setup on the Celery deployment: simulated hosted checkpoints in families, their watch-list and
scenario, the deployment (one CPU worker, GPU workers behind a ``gpu`` pool), the night's trigger, a worker's death.

Each watch-list entry is an ``endpoint`` checkpoint (``fleet-000`` ...) served by its family's simulator, which
answers the ``smoke`` suite's arithmetic questions with the family's accuracy and streams the latency scenario with
the family's delays; nothing is loaded, so a checkpoint's "GPU" work is a few seconds of requests. What the night
must produce follows from the suite, the scenario and ``limit`` alone (:class:`Shape`), and the simulators record
what they served: both are references independent of what the pipeline recorded (see ``measure.py``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from integration.distributed.cluster import Cluster, airflow_env, free_port, stop_group, wait_for
from integration.distributed.services import Postgres

if TYPE_CHECKING:
    from integration.distributed.services import LocalPostgres
    from s3server import SeaweedFS

DAG_ID = "evals_nightly"
GPU_WORKERS = ("gpu-1", "gpu-2")
CPU_WORKER = "cpu-worker"


@dataclass(frozen=True)
class Family:
    """Checkpoints behind one simulator: which share of the arithmetic questions they answer right, and how fast."""

    name: str
    accuracy: float
    seed: int
    ttft_ms: float
    itl_ms: float


FAMILIES = (
    Family("llama", 0.8, 1, 20.0, 5.0),
    Family("qwen", 0.7, 2, 25.0, 4.0),
    Family("mistral", 0.6, 3, 15.0, 6.0),
    Family("smollm", 0.5, 4, 30.0, 5.0),
)


@dataclass(frozen=True)
class Shape:
    """What each checkpoint runs: ``limit`` questions of the smoke suite's generation task, and a short chat
    scenario (closed-loop levels at these concurrencies)."""

    limit: int = 20
    concurrency: tuple[int, ...] = (1, 2)
    requests_per_level: int = 10
    warmup: int = 1
    max_tokens: int = 8

    def planned_rows(self) -> dict[str, int]:
        """Rows each published run must hold, from the definitions: the smoke suite's one generation task
        (``bigbench_arithmetic_1d_add``: metric exact_match under 2 filters, strict-match and flexible-extract;
        its multiple-choice group is skipped for a chat API), one latency row per level, one sample per request."""
        filters = 2
        return {
            "accuracy": filters,
            "accuracy_samples": filters * self.limit,
            "latency": len(self.concurrency),
            "latency_samples": len(self.concurrency) * self.requests_per_level,
        }

    def planned_requests(self) -> tuple[int, int]:
        """(questions asked, streamed requests) per checkpoint: one request per question; per level its requests
        plus max(warm-up, concurrency) warm-up requests (every pooled connection is opened first)."""
        streamed = sum(self.requests_per_level + max(self.warmup, c) for c in self.concurrency)
        return self.limit, streamed

    def write_scenario(self, folder: Path) -> Path:
        """The scenario as ``<folder>/smoke.yaml``: EVALS_LATENCY_SCENARIO_DIR is searched before the shipped
        scenarios, so the nightly DAG's ``smoke`` (a choice its form offers) runs this one. jsonl prompts: a hosted
        model ships no tokenizer for synthetic ones."""
        folder.mkdir(parents=True, exist_ok=True)
        prompts = [{"prompt": f"Tell fleet member {i} a short story."} for i in range(8)]
        (folder / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
        scenario = {
            "name": "smoke",
            "version": "fleet-1",
            "api": "chat",
            "prompts": {"source": "jsonl", "path": "prompts.jsonl"},
            "output": {"max_tokens": self.max_tokens},
            "levels": [{"concurrency": c} for c in self.concurrency],
            "requests_per_level": self.requests_per_level,
            "warmup_requests": self.warmup,
            "timeout_s": 30,
            "slo": {"ttft_p95_ms": 2000},
        }
        path = folder / "smoke.yaml"
        path.write_text(yaml.safe_dump(scenario))
        return path


def model_name(index: int) -> str:
    return f"fleet-{index:03d}"


def family_of(index: int, families: tuple[Family, ...] = FAMILIES) -> Family:
    return families[index % len(families)]


def write_watchlist(path: Path, n: int, urls: Mapping[str, str]) -> dict[str, str]:
    """``n`` endpoint entries, fleet-000 ..., round-robin over the families; returns model -> family."""
    entries, families = [], {}
    for index in range(n):
        family = family_of(index)
        entries.append(
            {
                "source": "endpoint",
                "model": model_name(index),
                "base_url": f"{urls[family.name]}/v1",
                "price_input_per_1m": 0.1 + 0.01 * (index % 7),
                "price_output_per_1m": 0.4 + 0.02 * (index % 5),
            }
        )
        families[model_name(index)] = family.name
    path.write_text(yaml.safe_dump({"sources": entries}, sort_keys=False))
    return families


@contextlib.contextmanager
def simulators(workdir: Path, families: tuple[Family, ...] = FAMILIES) -> Iterator[dict[str, str]]:
    """One simulator per family (its own process group), each answering with the family's accuracy and delays."""
    import httpx

    from evals.latency.server import simulator_command

    started: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    try:
        for family in families:
            port = free_port()
            extra = ("--accuracy", str(family.accuracy), "--answer-seed", str(family.seed))
            command = simulator_command(port, ttft_ms=[family.ttft_ms], itl_ms=[family.itl_ms], extra=extra)
            log = open(workdir / f"simulator-{family.name}.log", "wb")  # noqa: SIM115 - the child keeps its own
            started[family.name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            log.close()
            urls[family.name] = f"http://127.0.0.1:{port}"
        for name, url in urls.items():
            wait_for(f"simulator {name}", lambda url=url: httpx.get(f"{url}/health", timeout=2).status_code == 200, 60)
        yield urls
    finally:
        for process in started.values():
            stop_group(process, grace_s=10)


RESTARTABLE = ("scheduler", "postgres", "seaweedfs")  # the services FleetNight.restart restarts mid-night


@dataclass
class FleetNight:
    """A deployment running the nightly DAG over ``n`` simulated checkpoints; :meth:`boot`, :meth:`trigger`."""

    workdir: Path
    postgres: Postgres
    n: int
    shape: Shape = field(default_factory=Shape)
    cpu_concurrency: int = 3
    heartbeat_timeout_s: int = 30
    # How often a scheduler adopts the tasks of a dead one: until then a task whose worker also died is nobody's
    # to time out (Airflow's default 300 s; measured: a scheduler restart plus a lost worker cost those 300 s).
    orphan_check_s: int = 60
    retry_delay_s: float = 30.0  # the deployment's default (EVALS_TASK_RETRY_DELAY_S)
    run_id: str = "fleet-night"
    urls: dict[str, str] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)  # model -> family
    cluster: Cluster | None = None

    def configure(self, redis_url: str, s3: Any, warehouse: str, urls: Mapping[str, str]) -> Cluster:
        """The deployment's environment: the cluster's, plus the watch-list, the scenario and a fresh cache (the
        lm-eval request cache must not answer for the simulators)."""
        self.urls = dict(urls)
        self.families = write_watchlist(self.workdir / "watchlist.yaml", self.n, urls)
        self.shape.write_scenario(self.workdir / "scenarios")
        env = airflow_env(self.workdir, self.postgres, redis_url, s3, warehouse, free_port())
        running = self.cpu_concurrency + len(GPU_WORKERS)
        env.update(
            {
                # The pools are the real caps (see boot). The executor's own count of busy slots lags behind the
                # workers (it learns of finished tasks a loop or more later), so a parallelism equal to the slots
                # let the scheduler queue one or two tasks per loop while workers sat idle (measured at 200).
                "AIRFLOW__CORE__PARALLELISM": str(4 * running),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(running),
                # A worker's death is noticed when its tasks stop heartbeating (the default waits 5 minutes).
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(self.heartbeat_timeout_s),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": str(self.orphan_check_s),
                "EVALS_TASK_RETRY_DELAY_S": str(self.retry_delay_s),
                # No scheduled run when the DAG is unpaused (the latest 29 February 02:00 predates its start
                # date): the night is the run triggered with this night's run id and options.
                "EVALS_SCHEDULE": "0 2 29 2 *",
                "EVALS_WATCHLIST": str(self.workdir / "watchlist.yaml"),
                "EVALS_LATENCY_SCENARIO_DIR": str(self.workdir / "scenarios"),
                "EVALS_CACHE_DIR": str(self.workdir / "cache"),
            }
        )
        self.cluster = Cluster(self.workdir, env)
        return self.cluster

    def boot(self) -> dict[str, float]:
        """The workers, and pools as large as the slots that serve them: ``gpu`` one per GPU worker, and
        ``default_pool`` the CPU worker's concurrency, so CPU tasks never hold parallelism slots while they wait in
        the broker for a busy worker (an evaluation that becomes ready would wait behind them, its GPU idle)."""
        assert self.cluster is not None
        workers = {CPU_WORKER: ("default", self.cpu_concurrency)}
        workers.update({name: ("gpu", 1) for name in GPU_WORKERS})
        pools = {"gpu": len(GPU_WORKERS), "default_pool": self.cpu_concurrency}
        return self.cluster.boot(self.postgres, DAG_ID, workers, pools)

    def trigger(self) -> None:
        assert self.cluster is not None
        conf = json.dumps({"limit": self.shape.limit})
        self.cluster.run("dags", "trigger", DAG_ID, "--run-id", self.run_id, "-c", conf)

    def evaluations(self, state: str, hostname: str | None = None) -> int:
        """How many ``checkpoint.evaluate`` task instances are in ``state`` (on ``hostname``)."""
        sql = "select count(*) from task_instance where dag_id = %s and run_id = %s and task_id = %s and state = %s"
        args: list[Any] = [DAG_ID, self.run_id, "checkpoint.evaluate", state]
        if hostname is not None:
            sql += " and hostname = %s"
            args.append(hostname)
        return int(self.postgres.query(sql, *args)[0][0])

    def kill_gpu_worker_while_busy(
        self, name: str, *, after_done: int, timeout: float, busy_for_s: float = 3.0
    ) -> list[int]:
        """Once ``after_done`` evaluations finished, SIGKILL worker ``name``'s process group while it has been
        running an evaluation for ``busy_for_s``; returns the map indexes it held."""
        assert self.cluster is not None

        def holding() -> list[int]:
            if self.evaluations("success") < after_done:
                return []
            rows = self.postgres.query(
                "select map_index from task_instance where dag_id = %s and run_id = %s and task_id = %s "
                "and state = 'running' and hostname = %s and start_date < now() - make_interval(secs => %s)",
                DAG_ID,
                self.run_id,
                "checkpoint.evaluate",
                name,
                busy_for_s,
            )
            return [int(index) for (index,) in rows]

        held = self.cluster.wait(f"{name} to hold an evaluation", holding, timeout, every=0.5)
        self.cluster.kill(name)
        return list(held)

    def restart(self, service: str, postgres: LocalPostgres | None, weed: SeaweedFS) -> str:
        """Restart ``service`` (``scheduler``: SIGKILLed, then started; ``postgres``: the metadata DB and the Iceberg
        catalog, fast shutdown; ``seaweedfs``) mid-night; says what was done and how long the service was away."""
        assert self.cluster is not None
        started = time.monotonic()
        if service == "scheduler":
            self.cluster.kill("scheduler")
            self.cluster.start("scheduler", "scheduler")
            return "scheduler SIGKILLed and started again"
        if service == "postgres":
            if postgres is None:
                return "postgres: not restarted (EVALS_TEST_POSTGRES_URL: not ours to restart)"
            postgres.stop()
            postgres.start()
            return f"PostgreSQL restarted (away {time.monotonic() - started:.1f}s)"
        if service == "seaweedfs":
            return f"SeaweedFS restarted (away {weed.restart():.1f}s)"
        raise ValueError(f"unknown service {service!r}; known: {', '.join(RESTARTABLE)}")

    def wait(self, timeout: float) -> str:
        assert self.cluster is not None
        return self.cluster.wait_for_run(self.postgres, DAG_ID, self.run_id, timeout)


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
