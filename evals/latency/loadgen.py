"""The load generator: one load level at a time, closed loop (concurrency) or open loop (Poisson/constant rate)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from evals.latency.client import RequestResult, Target, complete, send_request
from evals.latency.scenario import ConcurrencyLevel, RateLevel
from evals.latency.server_metrics import EMPTY, Scraper
from evals.latency.transport import Pool

if TYPE_CHECKING:
    from evals.latency.prompts import Prompt

log = logging.getLogger(__name__)

# epoll rounds timeouts up to whole milliseconds, so a plain sleep sends up to 1 ms late: sleep until this
# close to the due time, then yield to the loop (other streams keep being read) until it is due.
_SPIN_S = 0.002
_WARMUP_RATE_CONCURRENCY = 16
_LOOP_PROBE_S = 0.005


T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run the load generator's coroutine on uvloop (less event-loop overhead per read), asyncio's loop without it."""
    try:
        import uvloop
    except ImportError:  # not built for this platform
        return asyncio.run(main)
    return uvloop.run(main)


@dataclass(repr=False)
class LevelRun:
    """The raw outcome of one level: measured requests (sorted by index), the level's start clock, and what the
    client itself and the server's /metrics said meanwhile."""

    def __repr__(self) -> str:
        # Short on purpose: on Python 3.11 asyncio.Runner.run formats the finished main task (its result included)
        # in an error message it then discards; a full dataclass repr of every request took ~50 ms per 6,000.
        return f"LevelRun({self.level!r}, {len(self.results)} results, {len(self.warmup)} warm-up)"

    level: ConcurrencyLevel | RateLevel
    start: float
    results: list[RequestResult]
    warmup: list[RequestResult] = field(default_factory=list)
    prompts_used: int = 0
    processes: int = 1
    loop_lag_ms: list[float] = field(default_factory=list)  # how late a 5 ms timer woke, sampled all level
    cpu_s: float = 0.0  # load generator CPU seconds (all processes) while measuring
    wall_s: float = 0.0
    server: dict[str, object] = field(default_factory=lambda: dict(EMPTY))
    # A level run as trials (evals.latency.trials.pooled): each trial's span of request indexes, in order, and
    # the trials' measured seconds summed (the warm-ups between them are not the level's time).
    trial_sizes: list[int] = field(default_factory=list)
    measured_s: float | None = None

    @property
    def end(self) -> float:
        times = [r.finished for r in self.results if r.finished is not None]
        return max(times) if times else self.start

    @property
    def duration_s(self) -> float:
        """Seconds the level was measured: first send to last finish, or the trials' sum."""
        return self.measured_s if self.measured_s is not None else self.end - self.start


async def _watch_loop(lags: list[float], stop: asyncio.Event) -> None:
    """Event-loop lag: how late a short timer wakes; a loop busy with other work stamps tokens that late too."""
    while not stop.is_set():
        due = time.perf_counter() + _LOOP_PROBE_S
        await asyncio.sleep(_LOOP_PROBE_S)
        lags.append(max(0.0, time.perf_counter() - due) * 1e3)


class LevelObserver:
    """Client saturation and the server's metrics over the measured part of a level."""

    def __init__(self, metrics_url: str | None, scrape_interval_s: float) -> None:
        self.lags: list[float] = []
        self.stop = asyncio.Event()
        self.scraper = Scraper(metrics_url, interval_s=scrape_interval_s) if metrics_url else None
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks.append(asyncio.ensure_future(_watch_loop(self.lags, self.stop)))
        if self.scraper is not None:
            self.tasks.append(asyncio.ensure_future(self.scraper.run()))
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    async def finish(self, run: LevelRun) -> None:
        run.cpu_s, run.wall_s = time.process_time() - self.cpu0, time.perf_counter() - self.wall0
        self.stop.set()
        if self.scraper is not None:
            self.scraper.stop()
        await asyncio.gather(*self.tasks)
        run.loop_lag_ms = self.lags
        if self.scraper is not None:
            run.server = self.scraper.summary()


def arrival_offsets(
    rate: float, arrival: str, *, count: int | None, duration_s: float | None, seed: int
) -> list[float]:
    """Seconds after the level start at which requests are due; the first is due at 0."""
    if count is None and duration_s is None:
        raise ValueError("give a request count or a duration")
    rng = random.Random(seed)
    offsets: list[float] = []
    moment = 0.0
    while True:
        if count is not None and len(offsets) >= count:
            return offsets
        if duration_s is not None and moment >= duration_s:
            return offsets
        offsets.append(moment)
        moment += rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate


class _Payloads:
    """Request bodies, encoded once, handed out in order (cycling only when exhausted).

    Distinct prompts per request keep a prefix cache (vLLM's is on by default) from flattering TTFT.
    """

    def __init__(self, target: Target, prompts: Sequence[Prompt], first: int, stride: int = 1) -> None:
        if not prompts:
            raise ValueError("no prompts to send")
        self.bodies = [target.payload(prompt) for prompt in prompts]
        self.tokens = [prompt.tokens for prompt in prompts]
        self.used = first
        self.stride = stride  # a worker process of N takes every Nth prompt

    def take(self) -> tuple[bytes, int | None]:
        slot = self.used % len(self.bodies)
        self.used += self.stride
        return self.bodies[slot], self.tokens[slot]


@dataclass(frozen=True)
class Share:
    """This process's part of a level sent by ``processes`` processes: request k here is request
    ``k * processes + worker`` of the level; ``go`` (after warm-up) returns the level's shared start clock."""

    worker: int
    processes: int
    go: Callable[[], Awaitable[float]] | None = None

    def part(self, total: int) -> int:
        return total // self.processes + (1 if self.worker < total % self.processes else 0)

    def index(self, local: int) -> int:
        return local * self.processes + self.worker


_ALONE = Share(0, 1)


async def _wait_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > _SPIN_S:
        await asyncio.sleep(delay - _SPIN_S)
    while time.perf_counter() < moment:
        await asyncio.sleep(0)


async def _one(
    pool: Pool,
    target: Target,
    payloads: _Payloads,
    index: int,
    scheduled: float,
    timeout_s: float,
    tag: str,
) -> RequestResult:
    body, tokens = payloads.take()
    result = RequestResult(index=index, scheduled=scheduled, prompt_tokens=tokens)
    # Parsing waits until the level is over: it would otherwise hold the loop while other streams' reads arrive.
    return await send_request(pool, target, body, result, timeout_s=timeout_s, request_id=f"{tag}-{index}", defer=True)


async def _closed_loop(
    pool: Pool,
    target: Target,
    payloads: _Payloads,
    *,
    concurrency: int,
    count: int | None,
    duration_s: float | None,
    timeout_s: float,
    tag: str,
    share: Share = _ALONE,
    start_at: float | None = None,
) -> tuple[float, list[RequestResult]]:
    results: list[RequestResult] = []
    claimed = 0
    if start_at is not None:
        await _wait_until(start_at)
    start = start_at if start_at is not None else time.perf_counter()
    deadline = start + duration_s if duration_s is not None else None

    async def worker() -> None:
        nonlocal claimed
        while True:
            now = time.perf_counter()
            if (count is not None and claimed >= count) or (deadline is not None and now >= deadline):
                return
            index = share.index(claimed)
            claimed += 1
            results.append(await _one(pool, target, payloads, index, now, timeout_s, tag))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return start, results


async def _open_loop(
    pool: Pool,
    target: Target,
    payloads: _Payloads,
    offsets: list[float],
    *,
    max_concurrency: int | None,
    timeout_s: float,
    tag: str,
    share: Share = _ALONE,
    start_at: float | None = None,
) -> tuple[float, list[RequestResult]]:
    limit = asyncio.Semaphore(max_concurrency) if max_concurrency else None

    async def due(index: int, scheduled: float) -> RequestResult:
        if limit is None:
            return await _one(pool, target, payloads, index, scheduled, timeout_s, tag)
        async with limit:
            return await _one(pool, target, payloads, index, scheduled, timeout_s, tag)

    tasks = []
    start = start_at if start_at is not None else time.perf_counter()
    for local, offset in enumerate(offsets):
        scheduled = start + offset
        await _wait_until(scheduled)
        tasks.append(asyncio.ensure_future(due(share.index(local), scheduled)))
    return start, list(await asyncio.gather(*tasks))


async def run_level(
    target: Target,
    prompts: Sequence[Prompt],
    level: ConcurrencyLevel | RateLevel,
    *,
    requests: int | None,
    duration_s: float | None,
    warmup_requests: int,
    timeout_s: float,
    seed: int = 0,
    tag: str = "level",
    prompt_offset: int = 0,
    metrics_url: str | None = None,
    scrape_interval_s: float = 1.0,
    share: Share = _ALONE,
) -> LevelRun:
    """Warm up (unmeasured), then run ``level`` for ``requests`` requests or ``duration_s`` seconds.

    Warm-up sends ``max(warmup_requests, concurrency)`` requests at the level's concurrency, so every pooled
    connection is open before measuring; ``warmup_requests=0`` skips it. Prompts are taken in order from
    ``prompt_offset``; ``LevelRun.prompts_used`` says where the next level should continue. With
    ``metrics_url`` the server's Prometheus metrics are scraped while the level is measured. With ``share``
    this process sends only its part of the level (see :mod:`evals.latency.processes`).
    """
    payloads = _Payloads(target, prompts, prompt_offset + share.worker, share.processes)
    if isinstance(level, ConcurrencyLevel):
        streams = share.part(level.concurrency)
        pool, warm_concurrency = streams, streams
    else:
        pool = share.part(level.max_concurrency) if level.max_concurrency else 0
        warm_concurrency = min(pool or _WARMUP_RATE_CONCURRENCY, _WARMUP_RATE_CONCURRENCY)
    count = share.part(requests) if requests is not None else None
    warmup: list[RequestResult] = []
    # limit 0 is unbounded: an open-loop level must never queue behind its own connection pool.
    connections = Pool(target.base_url, limit=pool, connect_timeout_s=timeout_s)
    try:
        if warmup_requests > 0 and warm_concurrency > 0:
            n_warm = max(share.part(warmup_requests), warm_concurrency)
            _, warmup = await _closed_loop(
                connections,
                target,
                payloads,
                concurrency=min(warm_concurrency, n_warm),
                count=n_warm,
                duration_s=None,
                timeout_s=timeout_s,
                tag=f"{tag}-warmup",
                share=share,
            )
            for result in warmup:
                complete(result)
            failed = [r for r in warmup if not r.ok]
            if failed:
                log.warning("%d of %d warm-up requests failed, first: %s", len(failed), len(warmup), failed[0].error)
        start_at = await share.go() if share.go is not None else None
        observer = LevelObserver(metrics_url, scrape_interval_s)
        observer.start()
        if isinstance(level, ConcurrencyLevel):
            start, results = await _closed_loop(
                connections,
                target,
                payloads,
                concurrency=streams,
                count=count,
                duration_s=duration_s,
                timeout_s=timeout_s,
                tag=tag,
                share=share,
                start_at=start_at,
            )
        else:
            # Every process draws the same schedule from the seed and sends its own part of it.
            offsets = arrival_offsets(level.rate, level.arrival, count=requests, duration_s=duration_s, seed=seed)
            start, results = await _open_loop(
                connections,
                target,
                payloads,
                offsets[share.worker :: share.processes],
                max_concurrency=pool or None,
                timeout_s=timeout_s,
                tag=tag,
                share=share,
                start_at=start_at,
            )
        for result in results:
            complete(result)
        results.sort(key=lambda r: r.index)
        run = LevelRun(level=level, start=start, results=results, warmup=warmup, prompts_used=payloads.used)
        await observer.finish(run)
    finally:
        connections.close()
    return run
