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

The ceiling: a closed loop at 64 streams against 1 ms delays, with 1 and 2 load generator processes; it prints
token events/s, events/s per process, the client's CPU share and token events per client CPU-second (2 cores
here, shared with the server, which is the limit first; the last figure is one process's ceiling on its own core).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
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


def _lateness_p95(endpoint: str) -> float:
    records = fetch_truth(endpoint).values()
    late = [(w - s) * 1e3 for r in records for w, s in zip(r["token_times"], r["scheduled"], strict=True)]
    return percentile(late, 95) if late else float("nan")


def _cells(streams: list[list[float]], sent: list[float]) -> tuple[float | None, ...]:
    """TTFT, TPOT, ITL errors at p50 and p95 from each request's token times and send time."""
    ttft = [(times[0] - at) * 1e3 for times, at in zip(streams, sent, strict=True)]
    tpot = [(times[-1] - times[0]) * 1e3 / (len(times) - 1) for times in streams]
    itl = [(b - a) * 1e3 for times in streams for a, b in itertools.pairwise(times)]
    return (
        percentile(ttft, 50) - TTFT_MS,
        percentile(ttft, 95) - TTFT_MS,
        percentile(tpot, 50) - ITL_MS,
        percentile(tpot, 95) - ITL_MS,
        percentile(itl, 50) - ITL_MS,
        percentile(itl, 95) - ITL_MS,
    )


def ours(endpoint: str, streams: int, requests: int) -> tuple[tuple[float, ...], float, float]:
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
    late = _lateness_p95(endpoint)
    ok = [r for r in run.results if r.ok and r.sent is not None]
    cells = _cells([r.token_times for r in ok], [r.sent or 0.0 for r in ok])
    return cells, len(ok) / (run.end - run.start), late


def floor(endpoint: str, port: int, streams: int, requests: int) -> tuple[tuple[float, ...], float, float]:
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
    late = _lateness_p95(endpoint)
    ok = [r for r in results if r.ok]
    if len(ok) < len(results):
        print(f"  (floor: {len(results) - len(ok)} of {len(results)} requests did not finish)")
    return _cells([r.token_times for r in ok], [r.sent for r in ok]), len(ok) / wall, late


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
        cells = (ttft["p50"] - TTFT_MS, ttft["p95"] - TTFT_MS, tpot["p50"] - ITL_MS, tpot["p95"] - ITL_MS, None, None)
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
        f"   {rate:7.1f}   {late_text}"
    )


def ceiling(processes: int) -> tuple[float, float]:
    """Token events/s at 64 streams over 1 ms delays, and the client's CPU share per process."""
    port = free_port()
    with launch(
        reference_command(port, ttft_ms=[1.0], itl_ms=[1.0]),
        port=port,
        model="reference",
        backend="reference",
        accepts_ignore_eos=True,
        ready_timeout_s=30,
    ) as server:
        target = Target(server.endpoint, "reference", "completions", max_tokens=32)
        run = loadgen.run(
            run_level_processes(
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
        )
    row = summarize_level(run, scenario="c", slo={}, gpu_hour_usd=0, gpu_count=1, model_id="m", revision="r").row
    return row["output_tokens_per_s"], row["client_cpu_share"]


def main() -> None:
    # A SIGTERM (timeout, Ctrl-C in a pipeline) must still stop the reference servers this started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=_ints, default=[8, 32, 64])
    parser.add_argument("--requests-per-stream", type=int, default=10, help="at least 200 requests per level")
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
        print(f"\nerror = measured - truth, ms (TTFT {TTFT_MS:g} ms, then {ITL_MS:g} ms per token, {TOKENS} tokens)")
        print(
            "  client            streams  TTFT p50 / p95     TPOT p50 / p95     ITL p50 / p95     req/s"
            "   server late p95"
        )
        for streams in args.streams:
            requests = max(200, streams * args.requests_per_stream)
            cells, rate, late = floor(server.endpoint, port, streams, requests)
            _row("floor", streams, cells, rate, late)
            cells, rate, late = ours(server.endpoint, streams, requests)
            _row("checkpoint-evals", streams, cells, rate, late)
        if args.guidellm:
            from evals.checkpoints.models import tiny_model_checkpoint

            tokenizer, _ = tiny_model_checkpoint(Path.home() / ".cache" / "checkpoint-evals" / "test-models")
            for streams, (cells, rate) in sorted(guidellm(server.endpoint, args.streams, 200, tokenizer).items()):
                _row("GuideLLM 0.8.1", streams, cells, rate, None)
        print(f"  (ideal req/s at N streams: N / {(TTFT_MS + ITL_MS * (TOKENS - 1)) / 1e3:.3f} s)")
    if not args.skip_ceiling:
        print("\nceiling: closed loop, 64 streams, 1 ms TTFT and gaps, 32 tokens, 3000 requests")
        print("  (on 2 cores the reference server, not the client, is the limit here: the last column is what one")
        print("  process would carry with a core to itself = token events per client CPU-second)")
        print("  processes  token events/s  per process  client CPU per process  events per client CPU-s")
        for processes in (1, 2):
            events, cpu = ceiling(processes)
            print(
                f"  {processes:>9}  {events:14.0f}  {events / processes:11.0f}  {cpu:22.0%}  "
                f"{events / (cpu * processes):23.0f}"
            )


if __name__ == "__main__":
    main()
