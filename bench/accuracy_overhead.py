"""Overhead of our accuracy runner over calling lm-eval's simple_evaluate directly (goal: ratio <= 1.05).

Both sides load the same checkpoint and evaluate the same suite with the same limit, in the same process,
interleaved (direct, ours, direct, ours, ...) so that a noisy neighbour on a shared machine hits both alike.
"Ours" includes everything the pipeline pays: checks, task validation, the request cache (fresh each time, so
nothing is reused), normalization, provenance and the Parquet write of the run to a file:// warehouse.

    python bench/accuracy_overhead.py [--checkpoint DIR] [--suite smoke] [--limit 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def direct(checkpoint: Path, suite_name: str, limit: int | None) -> tuple[float, float]:
    from lm_eval import simple_evaluate

    from evals.accuracy.suites import load_suite, task_manager

    suite = load_suite(suite_name)
    seeds = suite.seeds
    started, cpu = time.perf_counter(), time.process_time()
    simple_evaluate(
        model="hf",
        model_args={"pretrained": str(checkpoint), "dtype": "float32", "trust_remote_code": False},
        tasks=suite.tasks,
        batch_size=suite.batch_size,
        device="cpu",
        limit=limit,
        bootstrap_iters=suite.bootstrap_iters,
        task_manager=task_manager(suite),
        random_seed=seeds.random,
        numpy_random_seed=seeds.numpy,
        torch_random_seed=seeds.torch,
        fewshot_random_seed=seeds.fewshot,
        fewshot_as_multiturn=False,
    )
    return time.perf_counter() - started, time.process_time() - cpu


def ours(checkpoint: Path, suite_name: str, limit: int | None, workdir: Path, index: int) -> tuple[float, float]:
    from evals.accuracy import run_suite
    from evals.checkpoints import CheckpointRef
    from evals.pipeline.outcome import merge
    from evals.pipeline.plan import Options
    from evals.pipeline.publish import publish, run_context
    from evals.settings import get_settings
    from evals.warehouse import Warehouse

    settings = get_settings(
        cache_dir=workdir / f"cache-{index}",
        warehouse=f"file://{workdir / 'wh'}",
        accuracy_device="cpu",
        accuracy_progress="bars",
    )
    started, cpu = time.perf_counter(), time.process_time()
    result = run_suite(
        checkpoint, suite_name, model_id="bench/model", revision=f"{index:040d}", limit=limit, settings=settings
    )
    publish(
        CheckpointRef("local", "bench/model", f"{index:040d}"),
        Options(suite=suite_name, suite_version=result.provenance["suite_version"], scenario=None),
        run_context(dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=index)),
        merge(result, None),
        warehouse=Warehouse.from_settings(settings),
    )
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="checkpoint folder; default: the tiny test model")
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--limit", type=int, default=20, help="docs per task (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    limit = args.limit or None
    checkpoint = args.checkpoint
    if checkpoint is None:
        from evals.checkpoints.models import tiny_model_checkpoint

        cache = Path(os.environ.get("EVALS_TEST_MODELS_DIR", Path.home() / ".cache/checkpoint-evals/test-models"))
        checkpoint = tiny_model_checkpoint(cache)[0]
    print(f"checkpoint {checkpoint}, suite {args.suite}, limit {limit}, {args.repeats} interleaved repeats")
    direct(checkpoint, args.suite, 1)  # warm-up: imports, dataset build caches
    wall: dict[str, list[float]] = {"direct": [], "ours": []}
    cpu: dict[str, list[float]] = {"direct": [], "ours": []}
    with tempfile.TemporaryDirectory(prefix="acc-bench-") as tmp:
        for i in range(args.repeats):
            for name, run in (
                ("direct", lambda: direct(checkpoint, args.suite, limit)),
                ("ours", lambda i=i: ours(checkpoint, args.suite, limit, Path(tmp), i)),
            ):
                w, c = run()
                wall[name].append(w)
                cpu[name].append(c)
            print(
                f"repeat {i}: direct {wall['direct'][-1]:.2f} s wall / {cpu['direct'][-1]:.2f} s CPU, "
                f"ours {wall['ours'][-1]:.2f} s wall / {cpu['ours'][-1]:.2f} s CPU"
            )
    for label, data in (("wall", wall), ("CPU", cpu)):
        d, o = statistics.median(data["direct"]), statistics.median(data["ours"])
        print(
            f"median {label}: direct simple_evaluate {d:.2f} s, run_suite + normalize + warehouse write {o:.2f} s, "
            f"ratio {o / d:.3f} (goal <= 1.05)"
        )
    print("CPU time (all threads of this process) is the figure to trust on a shared machine; wall time is noisy.")


if __name__ == "__main__":
    main()
