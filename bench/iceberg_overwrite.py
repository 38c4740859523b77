"""Publishing one run as a table's snapshots accumulate: our transactions beside pyiceberg's own, in the same run.

    .venv/bin/python bench/iceberg_overwrite.py                 # depths 0, 20, 60, 120, 240 snapshots per table
    .venv/bin/python bench/iceberg_overwrite.py --depths 0 60   # chosen depths

pyiceberg 0.12's transaction deep-copies the table metadata on each of its ~31 reads per overwrite, so a publish
costs more the more snapshots a table retains (a nightly warehouse retains nights x models of them).
``evals.warehouse.transaction`` computes it once per staged state. Each depth publishes ``--runs`` runs with each
transaction, alternating them (``write_run`` through the gate's approval, as ``bench/warehouse_year.py`` does: 4
overwrites, the ``runs`` row last), and prints the median wall and CPU seconds and their ratio. No maintenance
runs, so every commit's snapshot stays: the depth is the number of snapshots per table when the publish starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import query_scaling as qs
import warehouse_year as wy

import evals.warehouse.transaction as transaction
from evals.warehouse import Warehouse


def pyiceberg_own(table):  # type: ignore[no-untyped-def]
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", type=int, nargs="+", default=[0, 20, 60, 120, 240])
    parser.add_argument("--runs", type=int, default=6, help="publishes per transaction kind at each depth")
    parser.add_argument("--models", type=int, default=20)
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="evals-overwrite-"))
    cached = transaction.writable
    try:
        os.environ["EVALS_MANIFEST_CACHE_DIR"] = str(root / "manifest-cache")  # never the repository's
        wh = Warehouse(f"file://{root / 'warehouse'}")
        scale = qs.FULL  # the per-run sizes of bench/warehouse_year.py
        qs.prepare(root, scale, 0, [])
        models = wy.fleet(args.models, seed=0)
        revisions = [0] * len(models)
        published = 0
        night = 0
        print(f"publish = write_run of one run ({qs.FULL.acc_rows_per_run} accuracy rows...), median of {args.runs}")
        print(f"{'snapshots':>10}{'ours':>9}{'pyiceberg':>11}{'ratio':>7}{'ours CPU':>10}{'pyiceberg CPU':>15}")
        for depth in sorted(args.depths):
            while published < depth:  # grow the history to this depth with our transactions
                for spec in wy.night_specs(models, night, revisions, published):
                    if published >= depth:
                        break
                    wy.publish(wh, spec, scale, root / "hive", seed=0)
                    published += 1
                night += 1
            times: dict[str, list[tuple[float, float]]] = {"ours": [], "pyiceberg": []}
            specs = iter(wy.night_specs(models, 10_000 + depth, revisions, 100_000 + depth * 10))
            for i in range(2 * args.runs):
                kind = ("ours", "pyiceberg")[i % 2]
                transaction.writable = cached if kind == "ours" else pyiceberg_own
                try:
                    times[kind].append(wy.publish(wh, next(specs), scale, root / "hive", seed=1))
                finally:
                    transaction.writable = cached
            ours = statistics.median(w for w, _ in times["ours"])
            theirs = statistics.median(w for w, _ in times["pyiceberg"])
            ours_cpu = statistics.median(c for _, c in times["ours"])
            theirs_cpu = statistics.median(c for _, c in times["pyiceberg"])
            print(
                f"{depth:>10}{ours:>8.3f}s{theirs:>10.3f}s{theirs / ours:>6.2f}x{ours_cpu:>9.3f}s{theirs_cpu:>14.3f}s",
                flush=True,
            )
            published += 2 * args.runs  # the timed publishes are history too
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"done in {time.perf_counter() - started:.0f} s")
    sys.exit(code)
