"""Load generator fidelity: each client's error against the same reference server's injected delays, in one run,
and the load generator's ceiling in token events/s per process.

    .venv/bin/python bench/loadgen_fidelity.py [--streams 8,32,64] [--guidellm] [--skip-ceiling]

The reference server (``evals.latency.reference``, its own process) streams 16 tokens: the first after TTFT
80 ms, every later one 12 ms after the previous, and records when each token was due and written. Error =
measured - configured truth, in ms (TTFT, TPOT and ITL at p50 / p95); "server late" is the reference server's own
lateness at p95 in the same level, which no client can read away. Clients, each against the same server:

- checkpoint-evals: ``evals.latency.loadgen`` (what the product publishes with);
- floor: ``bench/floor_client.py``, a raw-asyncio client that stamps reads inside ``data_received``;
- GuideLLM 0.8.1 (``--guidellm``): installed into ``.cache/bench/guidellm`` on first use (~100 s; it does not fit
  our lock) and driven through its CLI as ../shared/ENVIRONMENT.md says.

The ceiling: a closed loop at 64 streams, with 1 and 2 load generator processes, twice: "paced" (tokens 1 ms
apart, one event per read; on 2 cores the server's timers are the limit) and "burst" (``--itl-ms 0``: all 256
tokens in one write, nearly free for the server, so the client is the limit). It prints token events/s, per
process, each process's CPU share, the server's, and token events per client CPU-second: when that figure holds
as processes are added, throughput grows with the cores the load generator gets.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.floor_client import run_closed_loop  # noqa: E402
from evals.latency import loadgen  # noqa: E402
from evals.latency.client import Target  # noqa: E402
from evals.latency.metrics import percentile, summarize_level  # noqa: E402
from evals.latency.processes import run_level_processes  # noqa: E402
from evals.latency.prompts import Prompt  # noqa: E402
from evals.latency.scenario import ConcurrencyLevel  # noqa: E402
from evals.latency.server import free_port, launch, reference_command  # noqa: E402
from evals.latency.simulator import fetch_truth, reset_truth  # noqa: E402

TTFT_MS, ITL_MS, TOKENS = 80.0, 12.0, 16
GUIDELLM = ROOT / ".cache" / "bench" / "guidellm"
PROMPTS = [Prompt(text=f"bench prompt {i}") for i in range(64)]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


@dataclass
class Pooled:
    """One client's requests at one level, pooled over rounds: token times and send stamps per request, the
    reference server's lateness per token, and the request rate per round."""

    streams: list[list[float]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)

    def add(self, streams: list[list[float]], sent: list[float], rate: float, endpoint: str) -> None:
        self.streams += streams
        self.sent += sent
        self.rates.append(rate)
        records = fetch_truth(endpoint).values()
        for record in records:
            self.lateness_ms += [(w - s) * 1e3 for w, s in zip(record["token_times"], record["scheduled"], strict=True)]

    @property
    def late_p95(self) -> float:
        return percentile(self.lateness_ms, 95) if self.lateness_ms else float("nan")


E2E_MS = TTFT_MS + ITL_MS * (TOKENS - 1)


def _cells(streams: list[list[float]], sent: list[float]) -> tuple[float | None, ...]:
    """TTFT, TPOT, ITL and E2E (send to last token) errors at p50 and p95 from each request's token times and
    send time."""
    ttft = [(times[0] - at) * 1e3 for times, at in zip(streams, sent, strict=True)]
    tpot = [(times[-1] - times[0]) * 1e3 / (len(times) - 1) for times in streams]
    itl = [(b - a) * 1e3 for times in streams for a, b in itertools.pairwise(times)]
    e2e = [(times[-1] - at) * 1e3 for times, at in zip(streams, sent, strict=True)]
    return (
        percentile(ttft, 50) - TTFT_MS,
        percentile(ttft, 95) - TTFT_MS,
        percentile(tpot, 50) - ITL_MS,
        percentile(tpot, 95) - ITL_MS,
        percentile(itl, 50) - ITL_MS,
        percentile(itl, 95) - ITL_MS,
        percentile(e2e, 50) - E2E_MS,
        percentile(e2e, 95) - E2E_MS,
    )


def ours(endpoint: str, streams: int, requests: int, pooled: Pooled) -> None:
    reset_truth(endpoint)
    target = Target(endpoint, "reference", "completions", max_tokens=TOKENS)
    run = loadgen.run(
        loadgen.run_level(
            target,
            PROMPTS,
            ConcurrencyLevel(concurrency=streams),
            requests=requests,
            duration_s=None,
            warmup_requests=streams,
            timeout_s=120,
            tag="o",
        )
    )
    ok = [r for r in run.results if r.ok and r.sent is not None]
    pooled.add([r.token_times for r in ok], [r.sent or 0.0 for r in ok], len(ok) / (run.end - run.start), endpoint)


def floor(endpoint: str, port: int, streams: int, requests: int, pooled: Pooled) -> None:
    bodies = [
        json.dumps({"model": "reference", "prompt": p.text, "max_tokens": TOKENS, "stream": True}).encode()
        for p in PROMPTS
    ]

    async def go() -> tuple[list, float]:  # type: ignore[type-arg]
        await run_closed_loop("127.0.0.1", port, bodies, concurrency=streams, count=streams, tag="fw")
        reset_truth(endpoint)
        start = time.perf_counter()
        results = await run_closed_loop("127.0.0.1", port, bodies, concurrency=streams, count=requests, tag="f")
        return results, time.perf_counter() - start

    results, wall = asyncio.run(go())
    ok = [r for r in results if r.ok]
    if len(ok) < len(results):
        print(f"  (floor: {len(results) - len(ok)} of {len(results)} requests did not finish)")
    pooled.add([r.token_times for r in ok], [r.sent for r in ok], len(ok) / wall, endpoint)


def _guidellm_ready() -> Path:
    exe = GUIDELLM / "bin" / "guidellm"
    if not exe.exists():
        print("installing guidellm==0.8.1 into its own venv (~100 s) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(GUIDELLM)], check=True)
        subprocess.run([str(GUIDELLM / "bin" / "pip"), "install", "-q", "guidellm==0.8.1"], check=True)
    return exe


def guidellm(endpoint: str, streams: list[int], requests: int, tokenizer: Path) -> dict[int, tuple]:  # type: ignore[type-arg]
    """One GuideLLM run over every level: per level (errors, req/s). It reports TTFT and per-request TPOT
    percentiles (its "inter-token latency"), no per-gap ITL."""
    exe = _guidellm_ready()
    out = Path(tempfile.mkdtemp(prefix="guidellm-")) / "out.json"
    reset_truth(endpoint)
    command = [
        str(exe), "run",
        "--backend", f"kind=openai_http,target={endpoint},model=reference,request_format=/v1/completions",
        "--profile", "kind=concurrent", "--override", "profile.streams", ",".join(map(str, streams)),
        "--constraint", f"kind=max_requests,count={requests}",
        "--tokenizer", f"kind=huggingface_auto,model={tokenizer}",
        "--data", f"kind=synthetic_text,prompt_tokens=32,output_tokens={TOKENS}",
        "--output", f"kind=json,path={out}", "--disable-console",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"guidellm failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")
    report = json.loads(out.read_text())
    rows = {}
    for bench in report["benchmarks"]:
        metrics = bench["metrics"]
        ttft = metrics["time_to_first_token_ms"]["successful"]["percentiles"]
        # GuideLLM's inter_token_latency is per request, (last - first token) / (tokens - 1): our TPOT.
        tpot = metrics["inter_token_latency_ms"]["successful"]["percentiles"]
        e2e = metrics["request_latency"]["successful"]["percentiles"]  # seconds
        cells = (
            *(ttft["p50"] - TTFT_MS, ttft["p95"] - TTFT_MS, tpot["p50"] - ITL_MS, tpot["p95"] - ITL_MS),
            *(None, None, e2e["p50"] * 1e3 - E2E_MS, e2e["p95"] * 1e3 - E2E_MS),
        )
        rows[int(bench["config"]["strategy"]["streams"])] = (
            cells,
            metrics["requests_per_second"]["successful"]["mean"],
        )
    return rows


def _row(name: str, streams: int, cells: tuple[float | None, ...], rate: float, late: float | None) -> None:
    def pair(low: float | None, high: float | None) -> str:
        return "       -        " if low is None or high is None else f"{low:+6.2f} / {high:+6.2f}"

    late_text = f"{late:6.2f}" if late is not None else "     -"
    print(
        f"  {name:<17} {streams:>4}   {pair(*cells[0:2])}   {pair(*cells[2:4])}   {pair(*cells[4:6])}"
        f"   {pair(*cells[6:8])}   {rate:7.1f}   {late_text}"
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ceiling(processes: int, itl_ms: float, tokens: int) -> tuple[float, float, float]:
    """Token events/s in a closed loop at 64 streams (1 ms TTFT), the client's CPU share per process and the
    server's CPU share."""
    port = free_port()
    with launch(
        reference_command(port, ttft_ms=[1.0], itl_ms=[itl_ms]),
        port=port,
        model="reference",
        backend="reference",
        accepts_ignore_eos=True,
        ready_timeout_s=30,
    ) as server:
        assert server.pid is not None
        target = Target(server.endpoint, "reference", "completions", max_tokens=tokens)
        level = run_level_processes(
            target,
            PROMPTS,
            ConcurrencyLevel(concurrency=64),
            processes=processes,
            requests=3000,
            duration_s=None,
            warmup_requests=64,
            timeout_s=120,
            tag="c",
        )
        server_cpu = _cpu_seconds(server.pid)
        run = loadgen.run(level)
        server_cpu = _cpu_seconds(server.pid) - server_cpu
    row = summarize_level(run, scenario="c", slo={}, gpu_hour_usd=0, gpu_count=1, model_id="m", revision="r").row
    return row["output_tokens_per_s"], row["client_cpu_share"], server_cpu / (run.end - run.start)


def main() -> None:
    # A SIGTERM (timeout, Ctrl-C in a pipeline) must still stop the reference servers this started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=_ints, default=[8, 32, 64])
    parser.add_argument("--requests-per-stream", type=int, default=10, help="at least 200 requests per level")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds per level, floor and ours alternating; samples are pooled"
    )
    parser.add_argument("--guidellm", action="store_true", help="also GuideLLM 0.8.1 (own venv, installed once)")
    parser.add_argument("--skip-ceiling", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (other work shares them)")
    port = free_port()
    with launch(
        reference_command(port, ttft_ms=[TTFT_MS], itl_ms=[ITL_MS], seed=1),
        port=port,
        model="reference",
        backend="reference",
        accepts_ignore_eos=True,
        ready_timeout_s=30,
    ) as server:
        print(f"\nerror = measured - truth, ms (TTFT {TTFT_MS:g} ms, then {ITL_MS:g} ms per token, {TOKENS} tokens;")
        print(f"  {args.rounds} rounds per level, floor and ours alternating, samples pooled; req/s: mean of rounds)")
        print(
            "  client            streams  TTFT p50 / p95     TPOT p50 / p95     ITL p50 / p95      E2E p50 / p95"
            "      req/s   server late p95"
        )
        for streams in args.streams:
            requests = max(200, streams * args.requests_per_stream)
            by_floor, by_ours = Pooled(), Pooled()
            for round_ in range(args.rounds):
                # Alternate who goes first, so a drift in the machine's load favours neither.
                order = ("floor", "ours") if round_ % 2 == 0 else ("ours", "floor")
                for client in order:
                    if client == "floor":
                        floor(server.endpoint, port, streams, requests, by_floor)
                    else:
                        ours(server.endpoint, streams, requests, by_ours)
            for name, pooled in (("floor", by_floor), ("checkpoint-evals", by_ours)):
                _row(name, streams, _cells(pooled.streams, pooled.sent), statistics.mean(pooled.rates), pooled.late_p95)
        if args.guidellm:
            from evals.checkpoints.models import tiny_model_checkpoint

            tokenizer, _ = tiny_model_checkpoint(Path.home() / ".cache" / "checkpoint-evals" / "test-models")
            for streams, (cells, rate) in sorted(guidellm(server.endpoint, args.streams, 200, tokenizer).items()):
                _row("GuideLLM 0.8.1", streams, cells, rate, None)
        print(f"  (ideal req/s at N streams: N / {(TTFT_MS + ITL_MS * (TOKENS - 1)) / 1e3:.3f} s)")
    if not args.skip_ceiling:
        print("\nceiling: closed loop, 64 streams, 1 ms TTFT, 3000 requests, 1 and 2 load generator processes")
        print("  paced:  32 tokens 1 ms apart, one token event per read (the server's timers are the limit on 2 cores)")
        print("  burst:  256 tokens in one write (the server costs next to nothing per token: the client is the limit)")
        print("  mode    processes  token events/s  per process  client CPU/process  server CPU  events/client CPU-s")
        for mode, itl_ms, tokens in (("paced", 1.0, 32), ("burst", 0.0, 256)):
            for processes in (1, 2):
                events, cpu, server_cpu = ceiling(processes, itl_ms, tokens)
                print(
                    f"  {mode:<6}  {processes:>9}  {events:14.0f}  {events / processes:11.0f}  {cpu:18.0%}"
                    f"  {server_cpu:10.0%}  {events / (cpu * processes):19.0f}"
                )


if __name__ == "__main__":
    main()
