"""Load generator fidelity: measurement error against a reference server's truth, and the highest open-loop rate
the generator sustains on this machine with P99 send lag <= 2 ms.

    .venv/bin/python bench/loadgen_fidelity.py [--concurrency 1,16,64,256] [--rates 100,200,400,...]

The reference server (``evals.latency.simulator``, a separate process) sleeps known, non-uniform TTFTs and
inter-token gaps and records ``time.perf_counter()`` (system-wide CLOCK_MONOTONIC on Linux) before each token
write. Error = client-measured metric − the same metric from the server's write times, anchored at the client's
send time; "send->recv" is the request's own trip into the server (client overhead + server queueing).
Goals (issue 5): error <= 1 ms at P50/P95 up to 64 streams; >= 500 req/s with P99 send lag <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.latency.client import Target
from evals.latency.loadgen import LevelRun, run_level
from evals.latency.metrics import percentile, summarize_level
from evals.latency.prompts import Prompt
from evals.latency.scenario import ConcurrencyLevel, RateLevel
from evals.latency.server import free_port, launch, simulator_command
from evals.latency.simulator import fetch_truth, reset_truth

PROMPTS = [Prompt(text=f"bench prompt {i}") for i in range(64)]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _fmt(values: list[float]) -> str:
    return f"{percentile(values, 50):6.3f} {percentile(values, 95):6.3f} {percentile(values, 99):7.3f}"


def fidelity(endpoint: str, concurrency: int, requests: int, max_tokens: int) -> None:
    reset_truth(endpoint)
    target = Target(endpoint, "simulator", "completions", max_tokens=max_tokens)
    run = asyncio.run(
        run_level(
            target,
            PROMPTS,
            ConcurrencyLevel(concurrency=concurrency),
            requests=requests,
            duration_s=None,
            warmup_requests=concurrency,
            timeout_s=120,
            tag="f",
        )
    )
    truth = fetch_truth(endpoint)
    row = summarize_level(run, scenario="bench", slo={}, gpu_hour_usd=0, gpu_count=1, model_id="m", revision="r").row
    true: dict[str, list[float]] = {"ttft": [], "itl": [], "e2e": []}
    read, send = [], []
    for r in run.results:
        if not r.ok or r.sent is None:
            continue
        record = truth[f"f-{r.index}"]
        written = record["token_times"]
        true["ttft"].append((written[0] - r.sent) * 1e3)
        true["e2e"].append((written[-1] - r.sent) * 1e3)
        true["itl"].extend((b - a) * 1e3 for a, b in itertools.pairwise(written))
        read.extend((seen - w) * 1e3 for seen, w in zip(r.token_times, written, strict=True))
        send.append((record["received"] - r.sent) * 1e3)
    errors = []
    for metric in ("ttft", "itl", "e2e"):
        for stat in (50, 95, 99):
            errors.append(row[f"{metric}_p{stat}_ms"] - percentile(true[metric], stat))
    cells = " ".join(f"{e:+6.2f}" for e in errors)
    print(
        f"{concurrency:>5} {len(run.results):>5} {row['n_failed']:>4}  {cells}   read {_fmt(read)}   "
        f"send->recv {_fmt(send)}"
    )


def rate_capacity(endpoint: str, rate: float, duration_s: float) -> tuple[float, float, float, int]:
    target = Target(endpoint, "simulator", "completions", max_tokens=2)
    run: LevelRun = asyncio.run(
        run_level(
            target,
            PROMPTS,
            RateLevel(rate=rate, arrival="poisson"),
            requests=None,
            duration_s=duration_s,
            warmup_requests=16,
            timeout_s=30,
            tag="r",
        )
    )
    lags = [(r.sent - r.scheduled) * 1e3 for r in run.results if r.sent is not None]
    span = max(r.scheduled for r in run.results) - run.start if run.results else 0.0
    achieved = (len(run.results) - 1) / span if span > 0 else 0.0
    failed = sum(not r.ok for r in run.results)
    return achieved, percentile(lags, 50), percentile(lags, 99), failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=_ints, default=[1, 16, 64, 256])
    parser.add_argument("--requests-per-stream", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--ttft-ms", type=_floats, default=[20.0, 35.0, 60.0])
    parser.add_argument("--itl-ms", type=_floats, default=[10.0, 20.0, 40.0])
    parser.add_argument("--rates", type=_floats, default=[100, 200, 400, 500, 600, 800, 1000, 1500])
    parser.add_argument("--rate-duration-s", type=float, default=3.0)
    parser.add_argument("--max-lag-ms", type=float, default=2.0)
    parser.add_argument("--skip-fidelity", action="store_true", help="Only the open-loop capacity sweep.")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    if not args.skip_fidelity:
        port = free_port()
        command = simulator_command(port, ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, seed=1)
        with launch(
            command, port=port, model="simulator", backend="simulator", accepts_ignore_eos=True, ready_timeout_s=30
        ) as server:
            print(
                f"\nmeasurement error, ms (client - server truth); TTFT {args.ttft_ms} ms, "
                f"ITL {args.itl_ms} ms, {args.max_tokens} tokens"
            )
            print(
                "  conc  reqs fail  TTFT p50  p95    p99   ITL p50  p95    p99   E2E p50  p95    p99  "
                "   read p50 p95 p99            send->recv p50 p95 p99"
            )
            for concurrency in args.concurrency:
                requests = max(32, concurrency * args.requests_per_stream)
                fidelity(server.endpoint, concurrency, requests, args.max_tokens)

    port = free_port()
    command = simulator_command(port, ttft_ms=[1.0], itl_ms=[1.0], seed=1, extra=("--no-record",))
    with launch(
        command, port=port, model="simulator", backend="simulator", accepts_ignore_eos=True, ready_timeout_s=30
    ) as server:
        print(f"\nopen-loop Poisson capacity ({args.rate_duration_s:g} s per rate, 2-token responses)")
        print("  offered  achieved  lag p50 ms  lag p99 ms  failed")
        best = 0.0
        for rate in args.rates:
            achieved, lag50, lag99, failed = rate_capacity(server.endpoint, rate, args.rate_duration_s)
            print(f"  {rate:7.0f}  {achieved:8.1f}  {lag50:10.3f}  {lag99:10.3f}  {failed:6d}")
            if lag99 <= args.max_lag_ms and failed == 0:
                best = max(best, rate)
            else:
                break
        print(f"\nhighest rate sustained with P99 send lag <= {args.max_lag_ms:g} ms: {best:.0f} req/s")


if __name__ == "__main__":
    main()
