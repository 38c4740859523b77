"""Past one core: a load level sent by N worker processes, each with its own event loop, on one shared schedule.

Each worker (spawned, so no event-loop state is inherited) warms up its own connections, reports ready, and waits
for the level's start clock from the parent; then it sends its part: closed loop, its share of the streams and
requests; open loop, every Nth arrival of the one schedule all processes draw from the level's seed. Request k of
worker w is request ``k * N + w`` of the level. Clocks are ``time.perf_counter()``: CLOCK_MONOTONIC on Linux, one
clock for every process of the machine, so the workers' stamps and the shared start compare directly. The parent
scrapes the server's /metrics; the workers' results, event-loop lags and CPU seconds are merged into one level.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from evals.latency import loadgen
from evals.latency.client import Target
from evals.latency.loadgen import LevelObserver, LevelRun, Share
from evals.latency.prompts import Prompt
from evals.latency.scenario import ConcurrencyLevel, RateLevel

_START_MARGIN_S = 0.05  # time for the start clock to reach every worker before it is due


def _worker(
    pipe: Connection,
    target: Target,
    prompts: list[Prompt],
    level: ConcurrencyLevel | RateLevel,
    share: tuple[int, int],
    options: dict[str, Any],
) -> None:
    async def go() -> float:
        pipe.send("ready")
        return float(await asyncio.get_running_loop().run_in_executor(None, pipe.recv))

    try:
        run = loadgen.run(loadgen.run_level(target, prompts, level, share=Share(*share, go=go), **options))
        pipe.send(run)
    except BaseException as exc:
        pipe.send(RuntimeError(f"load generator process {share[0]} failed: {type(exc).__name__}: {exc}"))
        raise


async def run_level_processes(
    target: Target,
    prompts: Sequence[Prompt],
    level: ConcurrencyLevel | RateLevel,
    *,
    processes: int,
    metrics_url: str | None = None,
    scrape_interval_s: float = 1.0,
    **options: Any,
) -> LevelRun:
    """:func:`evals.latency.loadgen.run_level` over ``processes`` worker processes (same options and result).

    Never more processes than streams (closed loop) or than the in-flight cap (open loop): each needs one.
    """
    cap = level.concurrency if isinstance(level, ConcurrencyLevel) else level.max_concurrency
    processes = min(processes, cap) if cap else processes
    if processes < 2:
        return await loadgen.run_level(
            target, prompts, level, metrics_url=metrics_url, scrape_interval_s=scrape_interval_s, **options
        )
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    pipes, workers = [], []
    for worker in range(processes):
        parent, child = context.Pipe()
        process = context.Process(
            target=_worker, args=(child, target, list(prompts), level, (worker, processes), options), daemon=True
        )
        process.start()
        pipes.append(parent)
        workers.append(process)
    try:
        for pipe in pipes:
            message = await loop.run_in_executor(None, pipe.recv)
            if isinstance(message, BaseException):
                raise message
        start_at = time.perf_counter() + _START_MARGIN_S
        observer = LevelObserver(metrics_url, scrape_interval_s)
        observer.start()
        for pipe in pipes:
            pipe.send(start_at)
        parts: list[LevelRun] = []
        for pipe in pipes:
            part = await loop.run_in_executor(None, pipe.recv)
            if isinstance(part, BaseException):
                raise part
            parts.append(part)
    finally:
        for process in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    results = sorted((r for part in parts for r in part.results), key=lambda r: r.index)
    run = LevelRun(
        level=level,
        start=start_at,
        results=results,
        warmup=[r for part in parts for r in part.warmup],
        prompts_used=max(part.prompts_used for part in parts) - processes + 1,
        processes=processes,
    )
    await observer.finish(run)
    # The client's own figures come from the workers, not from the parent that only waited for them.
    run.loop_lag_ms = [lag for part in parts for lag in part.loop_lag_ms]
    run.cpu_s = sum(part.cpu_s for part in parts)
    run.wall_s = max(part.wall_s for part in parts)
    return run
