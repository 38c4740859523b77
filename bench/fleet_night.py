"""A night at fleet scale: the nightly DAG over N simulated checkpoints on the real Celery stack, measured.

    .venv/bin/python bench/fleet_night.py                               # 200 checkpoints, no fault
    .venv/bin/python bench/fleet_night.py --checkpoints 40 --fault gpu-worker:10

The stack (``tests/integration/distributed/``: ``services.py``, ``cluster.py``, ``fleet.py``, shared with the
scaled-down test ``test_fleet_night.py``): PostgreSQL (Airflow's metadata DB and the Iceberg catalog, JDBC layout),
Redis, the scheduler, DAG processor and API server, one CPU worker (``default`` queue) and two workers on the
``gpu`` queue behind a ``gpu`` pool of 2 slots, the warehouse on SeaweedFS S3. The watch-list holds N ``endpoint``
checkpoints (fleet-000 ...) in 4 families, each family behind its own simulator with a known accuracy and delays.

Printed, all measured from outside the pipeline (``measure.py``):

- published exactly once: runs per model in the raw ``runs`` table and the read model (``views.connect``), rows per
  run against the rows the suite and scenario definitions plan; the simulators' own record (questions answered,
  streamed requests, and the accuracy each family's runs must show);
- Iceberg commit races per table (the warehouse's "lost N race(s)" lines, cross-checked against pyiceberg's own
  retry warnings) and the slowest publish;
- wall time against the ideal schedule (successful evaluate-task time / GPU slots, from ``task_instance``) and where
  the rest went: head (plan, first materialize), GPU-slot idle by cause (upstream not ready, scheduling, dispatch
  queued->running, a dead worker), tail (last publish, compare/report, summary), per-task durations and queueing;
- peak memory (PSS summed over each process group: the scheduler, each worker with its task processes, ...).

Faults mid-night, ``--fault KIND:K`` (repeatable), each once K evaluations have finished:

- ``gpu-worker``: gpu-1's process group SIGKILLed while it runs an evaluation (a machine lost): the evaluation is
  retried on gpu-2 after the heartbeat timeout and the retry delay; nothing may be lost or duplicated;
- ``scheduler``: the scheduler SIGKILLed and started again;
- ``postgres``: PostgreSQL (metadata DB and Iceberg catalog) restarted (fast shutdown, start on the same data);
- ``seaweedfs``: the S3 server restarted on the same data.

Run the same N without faults to see what a fault cost in wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from integration.distributed.fleet import (  # noqa: E402
    DAG_ID,
    GPU_WORKERS,
    RESTARTABLE,
    FleetNight,
    Shape,
    scratch_dir,
    simulators,
)
from integration.distributed.measure import MemorySampler, commits, published, schedule, served  # noqa: E402
from integration.distributed.services import LocalPostgres, postgres_server, redis_server  # noqa: E402
from s3server import S3Server, SeaweedFS  # noqa: E402

FAULTS = ("gpu-worker", *RESTARTABLE)


def inject(kind: str, night: FleetNight, postgres: LocalPostgres | None, weed: SeaweedFS) -> str:
    """Do one fault now; returns what was done and how long the service was away."""
    if kind == "gpu-worker":
        held = night.kill_gpu_worker_while_busy(GPU_WORKERS[0], after_done=0, timeout=3600)
        return f"{GPU_WORKERS[0]} SIGKILLed holding evaluation(s) {held}"
    return night.restart(kind, postgres, weed)


def parse_fault(text: str) -> tuple[str, int]:
    kind, _, after = text.partition(":")
    if kind not in FAULTS or not after.isdigit():
        raise argparse.ArgumentTypeError(f"--fault KIND:K, KIND one of {', '.join(FAULTS)}, K evaluations done")
    return kind, int(after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", type=int, default=200, help="watch-list entries (distinct checkpoints)")
    parser.add_argument("--limit", type=int, default=20, help="questions per checkpoint (the run's `limit`)")
    parser.add_argument("--requests-per-level", type=int, default=10, help="latency requests per level (2 levels)")
    parser.add_argument("--cpu-concurrency", type=int, default=3, help="task slots of the CPU worker")
    parser.add_argument("--fault", type=parse_fault, action="append", default=[], help="KIND:K (see the module doc)")
    parser.add_argument("--heartbeat-timeout", type=int, default=60, help="[scheduler] task_instance_heartbeat_timeout")
    parser.add_argument("--orphan-check", type=int, default=60, help="[scheduler] orphaned_tasks_check_interval")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="give up on the night after this (s)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) at the end")
    args = parser.parse_args()
    # A background job ignores SIGINT: SIGTERM tears the stack down too (the ExitStack below stops every service).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    shape = Shape(limit=args.limit, requests_per_level=args.requests_per_level)
    workdir = scratch_dir("evals-fleet-bench-")
    started = time.monotonic()
    print(f"work directory: {workdir}", flush=True)
    with contextlib.ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        postgres, local = stack.enter_context(postgres_server())
        redis_url = stack.enter_context(redis_server())
        weed = stack.enter_context(SeaweedFS(workdir))
        s3 = weed.server
        warehouse = f"s3://{s3.new_bucket()}/warehouse"
        urls = stack.enter_context(simulators(workdir))
        night = FleetNight(
            workdir,
            postgres,
            args.checkpoints,
            shape,
            args.cpu_concurrency,
            args.heartbeat_timeout,
            orphan_check_s=args.orphan_check,
        )
        cluster = night.configure(redis_url, s3, warehouse, urls)
        stack.callback(cluster.stop)

        def groups() -> dict[str, int]:
            found = {name: p.pid for name, p in cluster.processes.items() if name not in cluster.dead}
            found["seaweedfs"] = weed.process.pid
            if isinstance(local, LocalPostgres) and local.process is not None:
                found["postgresql"] = local.process.pid
            return found

        sampler = MemorySampler(groups)
        boot = night.boot()
        print(f"stack up in {time.monotonic() - started:.0f}s: {_fmt(boot)}", flush=True)
        sampler.start()
        night_started = time.monotonic()
        night.trigger()
        for kind, after in sorted(args.fault, key=lambda fault: fault[1]):
            cluster.wait(f"{after} evaluations", lambda after=after: night.evaluations("success") >= after, 3600)
            done = inject(kind, night, local, weed)
            print(f"fault at +{time.monotonic() - night_started:.0f}s ({after} evaluations done): {done}", flush=True)
        state = night.wait(args.timeout)
        print(f"night {state} in {time.monotonic() - night_started:.0f}s (seen from here)", flush=True)
        sampler.stop()
        truth = {family: served(url) for family, url in urls.items()}
        report(night, warehouse, s3, truth, sampler)


def report(night: FleetNight, warehouse: str, s3: S3Server, truth: dict, sampler: MemorySampler) -> None:  # type: ignore[type-arg]
    assert night.cluster is not None
    # This process reads the warehouse with plain credentials (the deployment used an Airflow connection).
    os.environ.update(
        AWS_ACCESS_KEY_ID=s3.access_key,
        AWS_SECRET_ACCESS_KEY=s3.secret_key,
        AWS_DEFAULT_REGION="us-east-1",
        EVALS_S3_ENDPOINT=s3.endpoint,
        EVALS_CATALOG_URI=night.postgres.url(),
        EVALS_CACHE_DIR=str(night.workdir / "reader-cache"),
    )
    from evals.warehouse import Warehouse

    n, shape = night.n, night.shape
    planned = shape.planned_rows()
    found = published(Warehouse(warehouse), night.families, planned)
    print(
        f"\n== {n} checkpoints, {len(truth)} families; limit {shape.limit}, levels {shape.concurrency} x "
        f"{shape.requests_per_level} requests; cpu-worker x{night.cpu_concurrency}, {len(GPU_WORKERS)} gpu workers, "
        f"pool gpu = {len(GPU_WORKERS)} slots"
    )
    print(
        f"published exactly once: {found.published_once}/{n}  (missing {found.missing or 0}, duplicated "
        f"{found.duplicated or 0}, wrong row counts {found.wrong_rows or 0})"
    )
    for table, rows in found.rows.items():
        print(f"  {table:<17} {rows:>8} rows (planned {n * planned[table]})")
    questions, streamed = shape.planned_requests()
    print("simulators' record (family: questions answered / planned, streamed / planned, accuracy; runs matching):")
    for family, record in truth.items():
        members = [m for m, f in night.families.items() if f == family]
        matching = sum(1 for m in members if record.accuracy is not None and found.accuracy.get(m) == record.accuracy)
        print(
            f"  {family:<8} {record.questions:>6} / {len(members) * questions:<6} {record.streamed:>6} / "
            f"{len(members) * streamed:<6} {record.accuracy}; {matching}/{len(members)}"
        )

    logs = [p for p in night.cluster.task_logs() if f"run_id={night.run_id}" in str(p)]
    seen = commits(logs)
    print(f"iceberg commit races (pyiceberg retry warnings in the task logs: {seen.pyiceberg_retries}):")
    for table in sorted(set(seen.contended) | set(seen.gave_up) | set(seen.conflicts)):
        print(
            f"  {table:<17} contended commits {seen.contended[table]:>4}, races lost {seen.races[table]:>4}, "
            f"slowest contended commit {seen.slowest_commit.get(table, 0):.2f}s, gave up {seen.gave_up[table]}, "
            f"validated conflicts {seen.conflicts[table]}"
        )
    if seen.publish_s:
        times = sorted(seen.publish_s.values())
        slowest = max(seen.publish_s, key=seen.publish_s.__getitem__)
        p95 = times[int(0.95 * (len(times) - 1))]
        print(
            f"publish step (in-task): p50 {statistics.median(times):.1f}s, p95 {p95:.1f}s, "
            f"slowest {slowest} {seen.publish_s[slowest]:.1f}s"
        )

    plan = schedule(night.postgres, DAG_ID, night.run_id, GPU_WORKERS)
    print(
        f"wall {plan.wall_s:.0f}s vs ideal {plan.ideal_s:.0f}s (evaluate {plan.gpu_work_s:.0f}s / "
        f"{len(GPU_WORKERS)} slots): {plan.wall_s / max(plan.ideal_s, 1e-9):.2f}x; "
        f"failed attempts held {plan.lost_gpu_s:.0f} slot-s"
    )
    print(f"  head (run start -> first evaluation): {plan.head_s:.0f}s")
    for cause, seconds in plan.idle.items():
        print(f"  GPU idle, {cause}: {seconds:.0f} slot-s")
    for task, seconds in plan.tail.items():
        print(f"  tail: last evaluation end -> {task} end: {seconds:.0f}s")
    print("  task                n    sum    mean   p95    max | queued->start mean p95 | scheduled->queued mean")
    for task, s in sorted(plan.by_task.items()):
        durations = f"{s['n']:>4.0f} {s['sum_s']:>6.0f} {s['mean_s']:>6.1f} {s['p95_s']:>6.1f} {s['max_s']:>6.1f}"
        waits = f"{s['queued_to_start_mean_s']:>12.1f} {s['queued_to_start_p95_s']:>5.1f}"
        print(f"  {task:<19}{durations} | {waits} | {s['scheduled_to_queued_mean_s']:>8.1f}")
    floor = sampler.machine_busy_s / sampler.cores
    print(
        f"machine CPU: {sampler.machine_busy_s:.0f} busy CPU-s over the night on {sampler.cores} cores = "
        f"{floor:.0f}s of wall even with every core busy ({floor / max(plan.wall_s, 1e-9):.0%} of the wall; "
        f"{floor / max(plan.ideal_s, 1e-9):.2f}x the ideal)"
    )
    print("  CPU seconds by service (processes as last seen every 2 s, so a lower bound):")
    services = sampler.cpu_s
    for name, seconds in sorted(services.items(), key=lambda item: -item[1]):
        print(f"  {name:<15} {seconds:>8.0f} CPU-s")
    print(f"  {'the rest':<15} {sampler.machine_busy_s - sum(services.values()):>8.0f} CPU-s (simulators, this bench)")
    print("peak memory (PSS summed over the process group; most processes at once):")
    for name, mb in sorted(sampler.peak_mb.items()):
        print(f"  {name:<15} {mb:>8.0f} MB  ({sampler.peak_processes[name]} processes)")


def _fmt(timings: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())


if __name__ == "__main__":
    main()
