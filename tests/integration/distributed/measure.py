"""What a fleet night did, measured from outside the pipeline: the warehouse's runs and rows against the plan, the
simulators' own record, Iceberg commit races from the task logs, the schedule from the metadata DB, peak memory."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integration.distributed.cluster import process_tree
from integration.distributed.services import Postgres

ACCURACY_KEY = ("bigbench_arithmetic_1d_add", "exact_match", "strict-match")  # the task the simulators answer
TABLES = ("accuracy", "accuracy_samples", "latency", "latency_samples")

# ---------------------------------------------------------------------------------------------- the warehouse


@dataclass
class Published:
    """Runs and rows of the night in the warehouse, against the plan (model -> family; rows per run)."""

    planned: int
    published_once: int = 0
    missing: list[str] = field(default_factory=list)  # no published run
    duplicated: dict[str, int] = field(default_factory=dict)  # model -> runs rows (raw table) when more than one
    wrong_rows: list[tuple[str, str, int, int]] = field(default_factory=list)  # (model, table, got, planned)
    rows: dict[str, int] = field(default_factory=dict)  # per table, published view
    accuracy: dict[str, float] = field(default_factory=dict)  # model -> exact_match (strict)

    @property
    def exactly_once(self) -> bool:
        return self.published_once == self.planned and not (self.missing or self.duplicated or self.wrong_rows)


def published(warehouse: Any, families: Mapping[str, str], planned_rows: Mapping[str, int]) -> Published:
    """Count through the read model (``views.connect``: published runs only) and, for duplicates, the raw Iceberg
    tables (every row at the current snapshot, whatever its status)."""
    from evals.warehouse.views import connect

    found = Published(planned=len(families))
    with connect(warehouse) as con:
        status = {
            m: (s, n)
            for m, s, n in con.execute(
                "select model_id, any_value(status), count(*) from all_runs group by 1"
            ).fetchall()
        }
        run_of = dict(con.execute("select model_id, run_id from runs").fetchall())
        per_run: dict[str, dict[str, int]] = {}
        for table in TABLES:
            counts = dict(con.execute(f"select run_id, count(*) from {table} group by 1").fetchall())
            per_run[table] = counts
            found.rows[table] = sum(counts.values())
        task, metric, filter_ = ACCURACY_KEY
        found.accuracy = dict(
            con.execute(
                "select r.model_id, a.value from accuracy a join runs r using (run_id) "
                "where a.task = ? and a.metric = ? and a.filter = ?",
                [task, metric, filter_],
            ).fetchall()
        )
    raw_runs = Counter(row["model_id"] for row in warehouse.read_table("runs").to_pylist())
    for model in sorted(families):
        if model not in run_of or status.get(model, ("", 0))[0] != "published":
            found.missing.append(model)
            continue
        if raw_runs[model] != 1:
            found.duplicated[model] = raw_runs[model]
            continue
        wrong = [(model, t, per_run[t].get(run_of[model], 0), n) for t, n in planned_rows.items()]
        wrong = [w for w in wrong if w[2] != w[3]]
        found.wrong_rows.extend(wrong)
        found.published_once += not wrong
    return found


# ---------------------------------------------------------------------------------------------- the simulators


@dataclass(frozen=True)
class Served:
    """One simulator's own record: questions answered (and its accuracy on the distinct ones), streamed requests."""

    questions: int
    distinct_questions: int
    accuracy: float | None
    streamed: int


def served(url: str) -> Served:
    import httpx

    truth = httpx.get(f"{url}/truth", timeout=60).json().values()
    asked = [t for t in truth if t["question"] is not None]
    right = {t["question"]: bool(t["correct"]) for t in asked}
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    streamed = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("vllm:time_to_first_token_seconds_count")
    )
    accuracy = sum(right.values()) / len(right) if right else None
    return Served(len(asked), len(right), accuracy, int(streamed))


# ---------------------------------------------------------------------------------------------- the task logs

_RACE = re.compile(r"commit (\w+) of run \w+: lost (\d+) race\(s\), committed after ([\d.]+)s")
_GAVE_UP = re.compile(r"commit (\w+) of run \w+: commit lost every retry")
_CONFLICT = re.compile(r"commit (\w+) of run \w+ conflicted with a concurrent commit")
_PUBLISHED = re.compile(r"publish: (\S+?)@\w+ published as run \w+ \(([\d.]+)s\)")
_PYICEBERG_RETRY = "Commit failed due to a concurrent update"


@dataclass
class Commits:
    """Iceberg commit contention per table, and the in-step publish times (model -> seconds)."""

    contended: Counter[str] = field(default_factory=Counter)  # commits that lost at least one race
    races: Counter[str] = field(default_factory=Counter)  # races lost (= pyiceberg retries)
    slowest_commit: dict[str, float] = field(default_factory=dict)
    gave_up: Counter[str] = field(default_factory=Counter)  # commits that lost every retry (the task retried)
    conflicts: Counter[str] = field(default_factory=Counter)  # validated conflicts, planned again
    pyiceberg_retries: int = 0  # pyiceberg's own warnings: the cross-check of sum(races)
    publish_s: dict[str, float] = field(default_factory=dict)


def commits(logs: Iterable[Path]) -> Commits:
    found = Commits()
    for path in logs:
        text = path.read_text(errors="replace")
        found.pyiceberg_retries += text.count(_PYICEBERG_RETRY)
        for table, lost, seconds in _RACE.findall(text):
            found.contended[table] += 1
            found.races[table] += int(lost)
            found.slowest_commit[table] = max(found.slowest_commit.get(table, 0.0), float(seconds))
        found.gave_up.update(_GAVE_UP.findall(text))
        found.conflicts.update(_CONFLICT.findall(text))
        for model, seconds in _PUBLISHED.findall(text):
            found.publish_s[model] = max(found.publish_s.get(model, 0.0), float(seconds))
    return found


# ---------------------------------------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class Attempt:
    """One try of one task instance, from ``task_instance`` and ``task_instance_history``."""

    task_id: str
    map_index: int
    try_number: int
    state: str | None
    hostname: str | None
    scheduled: dt.datetime | None
    queued: dt.datetime | None
    start: dt.datetime | None
    end: dt.datetime | None

    @property
    def duration(self) -> float:
        return (self.end - self.start).total_seconds() if self.start and self.end else 0.0


def attempts(postgres: Postgres, dag_id: str, run_id: str) -> list[Attempt]:
    columns = "task_id, map_index, try_number, state, hostname, scheduled_dttm, queued_dttm, start_date, end_date"
    current = postgres.query(f"select {columns} from task_instance where dag_id = %s and run_id = %s", dag_id, run_id)
    older = postgres.query(
        f"select {columns} from task_instance_history where dag_id = %s and run_id = %s", dag_id, run_id
    )
    seen: dict[tuple[str, int, int], Attempt] = {}
    for row in [*current, *older]:  # the current try wins over a copy of it in the history
        attempt = Attempt(*row)
        seen.setdefault((attempt.task_id, attempt.map_index, attempt.try_number), attempt)
    return sorted(seen.values(), key=lambda a: a.start or dt.datetime.max.replace(tzinfo=dt.UTC))


@dataclass
class Schedule:
    """Wall time against the ideal (successful GPU work / slots), and where the rest went (seconds; GPU idle in
    slot-seconds, one slot per GPU worker)."""

    wall_s: float
    ideal_s: float
    gpu_work_s: float
    lost_gpu_s: float  # slot time of evaluations that did not finish (a killed one: until its heartbeat timed out)
    head_s: float  # run start -> first evaluation start (plan, first materialize, scheduling)
    tail: dict[str, float]  # last evaluation's end -> each closing task's end
    idle: dict[str, float]  # GPU slot idle inside the evaluation span, by cause
    by_task: dict[str, dict[str, float]]  # task -> n, mean/p95/max duration, mean/p95 queued->start, sched->queued


def schedule(postgres: Postgres, dag_id: str, run_id: str, gpu_hosts: Iterable[str]) -> Schedule:
    run_start, run_end = postgres.query(
        "select start_date, end_date from dag_run where dag_id = %s and run_id = %s", dag_id, run_id
    )[0]
    tries = attempts(postgres, dag_id, run_id)
    evaluations = [a for a in tries if a.task_id == "checkpoint.evaluate" and a.start and a.end]
    good = [a for a in evaluations if a.state == "success"]
    hosts = list(gpu_hosts)
    gpu_work = sum(a.duration for a in good)
    first = min(a.start for a in evaluations if a.start)
    last = max(a.end for a in evaluations if a.end)
    idle: dict[str, float] = defaultdict(float)
    for host in hosts:
        previous = first
        for attempt in sorted((a for a in evaluations if a.hostname == host), key=lambda a: a.start):  # type: ignore[arg-type, return-value]
            assert attempt.start is not None and attempt.end is not None
            ready = min(attempt.scheduled or previous, attempt.start)
            queued = min(attempt.queued or attempt.start, attempt.start)
            idle["waiting for upstream"] += _seconds(previous, ready)
            idle["scheduling (slot free -> queued)"] += _seconds(max(previous, ready), queued)
            idle["dispatch (queued -> running)"] += _seconds(max(previous, queued), attempt.start)
            previous = max(previous, attempt.end)
        idle["after its last evaluation (killed, or nothing left)"] += _seconds(previous, last)
    tail = {}
    for task in ("checkpoint.publish", "compare_and_report", "summarize", "apply_approval"):
        ends = [a.end for a in tries if a.task_id == task and a.end]
        if ends:
            tail[task] = _seconds(last, max(ends))
    tail["dag run end"] = _seconds(last, run_end)
    return Schedule(
        wall_s=_seconds(run_start, run_end),
        ideal_s=gpu_work / max(1, len(hosts)),
        gpu_work_s=gpu_work,
        lost_gpu_s=sum(a.duration for a in evaluations if a.state != "success"),
        head_s=_seconds(run_start, first),
        tail=tail,
        idle=dict(idle),
        by_task=_by_task(tries),
    )


def _by_task(tries: list[Attempt]) -> dict[str, dict[str, float]]:
    grouped: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in tries:
        if attempt.start and attempt.end:
            grouped[attempt.task_id].append(attempt)
    out = {}
    for task, group in grouped.items():
        durations = [a.duration for a in group]
        waits = [_seconds(a.queued, a.start) for a in group if a.queued]
        scheduling = [_seconds(a.scheduled, a.queued) for a in group if a.scheduled and a.queued]
        out[task] = {
            "n": len(group),
            "sum_s": sum(durations),
            "mean_s": sum(durations) / len(durations),
            "p95_s": _p95(durations),
            "max_s": max(durations),
            "queued_to_start_mean_s": sum(waits) / len(waits) if waits else 0.0,
            "queued_to_start_p95_s": _p95(waits),
            "scheduled_to_queued_mean_s": sum(scheduling) / len(scheduling) if scheduling else 0.0,
        }
    return out


def _seconds(a: dt.datetime | None, b: dt.datetime | None) -> float:
    return max(0.0, (b - a).total_seconds()) if a and b else 0.0


def _p95(values: list[float]) -> float:
    import numpy as np

    return float(np.percentile(values, 95)) if values else 0.0


# ---------------------------------------------------------------------------------------------- memory


class MemorySampler(threading.Thread):
    """Every ``every`` s, the proportional set size (PSS: shared pages split between the processes sharing them,
    so forked workers are not counted twice) summed over each service: its process group and every process it
    started (task processes and PostgreSQL backends live in groups of their own); keeps each service's peak.

    Also the CPU time each service used (user + system of its processes as last seen: a process's final
    < ``every`` s are missed, so a lower bound) and the whole machine's busy CPU time between start and stop
    (exact, from /proc/stat): on a machine whose cores were busy all night, no schedule reaches the GPU ideal."""

    def __init__(self, groups: Callable[[], Mapping[str, int]], every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.groups, self.every = groups, every
        self.peak_mb: dict[str, float] = defaultdict(float)
        self.peak_processes: dict[str, int] = defaultdict(int)
        self._cpu_seen: dict[int, tuple[str, float]] = {}  # pid -> (service, user + system seconds)
        self.machine_busy_s = 0.0
        self.cores = os.cpu_count() or 1
        self._stop_event = threading.Event()

    @property
    def cpu_s(self) -> dict[str, float]:
        """CPU seconds per service (lower bound, see the class docstring)."""
        total: dict[str, float] = defaultdict(float)
        for name, seconds in self._cpu_seen.values():
            total[name] += seconds
        return dict(total)

    def run(self) -> None:
        import psutil

        busy_at_start = _busy_seconds(psutil.cpu_times())
        while not self._stop_event.is_set():
            leaders = self.groups()
            by_group = {leader: name for name, leader in leaders.items()}  # a leader's pid is its group's id
            owner = {pid: name for name, leader in leaders.items() for pid in _members(leader)}
            for process in psutil.process_iter():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if (name := by_group.get(os.getpgid(process.pid))) is not None:
                        owner.setdefault(process.pid, name)
            total: dict[str, float] = defaultdict(float)
            count: dict[str, int] = defaultdict(int)
            for pid, name in owner.items():
                with contextlib.suppress(psutil.Error):
                    process = psutil.Process(pid)
                    total[name] += process.memory_full_info().pss / 2**20
                    count[name] += 1
                    times = process.cpu_times()
                    # Keyed by pid and start time would survive pid reuse; a night reuses few pids in 2 s.
                    self._cpu_seen[pid] = (name, times.user + times.system)
            for name, mb in total.items():
                self.peak_mb[name] = max(self.peak_mb[name], mb)
                self.peak_processes[name] = max(self.peak_processes[name], count[name])
            self.machine_busy_s = _busy_seconds(psutil.cpu_times()) - busy_at_start
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def _busy_seconds(times: Any) -> float:
    """Seconds the machine's CPUs were not idle (nor waiting on I/O) since boot, summed over its cores."""
    return float(sum(times)) - times.idle - getattr(times, "iowait", 0.0)


def _members(leader: int) -> list[int]:
    return [process.pid for process in process_tree(leader)]


def elapsed(since: float) -> float:
    return time.monotonic() - since
