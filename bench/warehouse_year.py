"""A year of real commits: nightly publishes and the analytics DAG's maintenance, the warehouse measured per month.

    .venv/bin/python bench/warehouse_year.py                   # 365 nights x 20 models (make bench-year)
    .venv/bin/python bench/warehouse_year.py --nights 120      # a shorter year
    .venv/bin/python bench/warehouse_year.py --small           # a quick check of the same code path

Each simulated night publishes one run per model through the real publish path: the rows of
``bench/query_scaling.py``'s generator (same sizes per run), the gate's ``Approval`` for exactly those conformed
rows, ``Warehouse.write_run`` (one overwrite per data table, the ``runs`` row last). Then the analytics DAG's
maintenance, as ``compact_step`` runs it: ``compact_all`` up to ``EVALS_COMPACT_AFTER_DAYS`` before the night's
date, then ``maintain`` (snapshot expiry, orphan removal, manifest-cache pruning). The warehouse is file:// with
the SQL catalog (SQLite at ``<warehouse>/_catalog.db``, the default).

The clock: a night lasts seconds here, so commits carry real wall-clock timestamps. Retention is counted in
nights (``--retention-nights``, default ``EVALS_SNAPSHOT_RETENTION_HOURS`` / 24): each night's maintenance gets
``retention`` = the wall-clock time since the start of the oldest night still in the window, so snapshot expiry,
orphan removal (file mtimes) and cache pruning keep exactly the last N simulated nights. Compaction works on
eval_dates, which are simulated (``today`` = the night's date).

After the last night of each month (after its maintenance) it prints: metadata files (``*.metadata.json``),
manifest lists and manifests, their counts and bytes; data files (live in the current snapshots, and on disk);
opening the read model (``connect``) with an empty manifest cache, warm in the process and in a new process;
the reference reader (list every file of the Hive copy, read every ``runs`` file: ``query_scaling.hive_open``);
publish p50/p95 over the month; the leaderboard's first use and one model's trend; maintenance per night. The
leaderboard and the trend are checked against pandas over a Hive copy of every run (``query_scaling``'s
reference, which shares no code with ``evals.analysis``).

Goal (issue 24): at month 12, publish p95 <= 1 s and a warm open <= 1/50 of the reference reader's time (both
measured in this run); metadata not growing beyond the retention window.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import query_scaling as qs

from evals.analysis.leaderboard import connect
from evals.settings import get_settings
from evals.warehouse import RunRecord, Warehouse, keys
from evals.warehouse.approval import Approval
from evals.warehouse.compaction import compact_all, compaction_cutoff
from evals.warehouse.hive import run_file
from evals.warehouse.maintenance import maintain
from evals.warehouse.rows import conform_run_table

GOAL_PUBLISH_P95 = 1.0
GOAL_OPEN_RATIO = 50.0  # the reference reader's open / a warm open
FLAT_TOLERANCE = 1.25  # metadata after the retention window: at most this times the first full month's
TABLES = ("runs", "accuracy", "latency", "latency_samples")


@dataclass(frozen=True)
class Model:
    index: int
    model_id: str
    quality: float
    ttft_ms: float
    tpot_ms: float
    gpu_count: int


def fleet(models: int, seed: int) -> list[Model]:
    """The models evaluated every night (names, sizes and speeds drawn as ``query_scaling.plan`` does)."""
    rng = np.random.default_rng(seed)
    out = []
    for m in range(models):
        size = int(rng.choice([1, 3, 7, 8, 14, 32, 70]))
        out.append(
            Model(
                index=m,
                model_id=f"{qs.ORGS[m % len(qs.ORGS)]}/bench-model-{m:03d}-{size}B",
                quality=float(rng.uniform(0.35, 0.8)),
                ttft_ms=float(rng.uniform(40, 260) * (1 + size / 40)),
                tpot_ms=float(rng.uniform(8, 30) * (1 + size / 70)),
                gpu_count=1 if size <= 14 else (2 if size <= 32 else 4),
            )
        )
    return out


def night_specs(models: list[Model], night: int, revisions: list[int], first_index: int) -> list[qs.RunSpec]:
    """Tonight's run of each model; ``revisions`` (a model's current revision number) is advanced now and then."""
    rng = np.random.default_rng([night, 7])
    specs = []
    for model in models:
        if night and rng.random() < 0.05:  # a new checkpoint every ~3 weeks
            revisions[model.index] += 1
        revision = revisions[model.index]
        sha = hashlib.sha1(f"{model.model_id}@{revision}".encode()).hexdigest()
        logical = dt.datetime.combine(qs.START + dt.timedelta(days=night), dt.time(1), tzinfo=dt.UTC)
        logical += dt.timedelta(minutes=model.index)
        run_id = keys.make_run_id(
            model.model_id, sha, qs.SUITE, qs.SUITE_VERSION, qs.SCENARIO, qs.SCENARIO_VERSION, logical
        )
        specs.append(
            qs.RunSpec(
                index=first_index + len(specs),
                model=model.index,
                model_id=model.model_id,
                revision=sha,
                day=night,
                logical_date=logical,
                run_id=run_id,
                quality=model.quality + 0.01 * revision,
                ttft_ms=model.ttft_ms * 0.97**revision,
                tpot_ms=model.tpot_ms,
                gpu_count=model.gpu_count,
            )
        )
    return specs


def publish(wh: Warehouse, spec: qs.RunSpec, scale: qs.Scale, hive_root: Path, seed: int) -> tuple[float, float]:
    """Publish one run as the gate does once great-expectations passed it: (wall, CPU) seconds of ``write_run``
    (CPU: this process, its threads included; less sensitive to other work on the machine). Its rows also go to
    the Hive copy (the reference readers')."""
    rng = np.random.default_rng([seed, spec.index])
    latency, samples = qs._latency_tables(spec, rng)
    tables = {"accuracy": qs._accuracy_table(spec, rng), "latency": latency, "latency_samples": samples}
    runs = qs._run_records([spec], scale)
    for name, rows in (*tables.items(), ("runs", runs)):
        path = hive_root / run_file(name, spec.eval_date, spec.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, path, compression="zstd")
    record = RunRecord.from_row(runs.to_pylist()[0])
    conformed = {name: conform_run_table(name, rows, record) for name, rows in tables.items()}
    approval = Approval.issue(record.run_id, conformed)
    cpu = time.process_time()
    _, seconds = qs.timed(wh.write_run, record, conformed, approval=approval)
    return seconds, time.process_time() - cpu


@dataclass
class Month:
    label: str
    nights: int = 0
    runs: int = 0
    publish: list[float] = field(default_factory=list)
    publish_cpu: list[float] = field(default_factory=list)
    maintenance: list[float] = field(default_factory=list)
    merged: int = 0  # data files compaction replaced
    expired: int = 0  # snapshots
    deleted: int = 0  # orphaned files
    storage: dict[str, int] = field(default_factory=dict)
    opens: qs.Opens | None = None
    reference_s: float = 0.0
    board_s: float = 0.0
    trend_s: float = 0.0
    checked: str = "-"
    load: float = 0.0  # 1-minute load average when measured: absolute times move with the machine's other work


def maintenance(wh: Warehouse, today: dt.date, retention: dt.timedelta, month: Month) -> None:
    """The analytics DAG's ``compact`` task for the night ``today`` (compaction, then ``maintain``), timed."""
    started = time.perf_counter()
    compacted = compact_all(wh, end=compaction_cutoff(wh.settings, today))
    maintained = maintain(wh, retention=retention)
    month.maintenance.append(time.perf_counter() - started)
    month.merged += sum(r.files_merged for r in compacted)
    month.expired += sum(r.snapshots_expired for r in maintained)
    month.deleted += sum(r.files_deleted for r in maintained)


def storage(wh: Warehouse, root: Path, cache_dir: Path) -> dict[str, int]:
    """Files of the published tables by kind, with bytes; live data files and retained snapshots; catalog; cache."""
    found: Counter[str] = Counter()
    for table in TABLES:
        iceberg = wh.tables.existing(table)
        if iceberg is None:
            continue
        found["snapshots"] += len(iceberg.snapshots())
        found["live"] += len(list(iceberg.scan().plan_files()))
        for path in Path(iceberg.location().removeprefix("file://")).rglob("*"):
            if not path.is_file():
                continue
            kind = _kind(path)
            found[kind] += 1
            found[f"{kind}_bytes"] += path.stat().st_size
    found["catalog_bytes"] = (root / "warehouse" / "_catalog.db").stat().st_size
    for path in cache_dir.glob("*.arrow") if cache_dir.exists() else ():
        found["cache"] += 1
        found["cache_bytes"] += path.stat().st_size
    return dict(found)


def _kind(path: Path) -> str:
    """A table file's kind: json (``*.metadata.json``), lists (manifest lists), manifests, or data."""
    if path.parent.name != "metadata":
        return "data"
    if path.name.endswith(".metadata.json"):
        return "json"
    return "lists" if path.name.startswith("snap-") else "manifests"


def measure(wh: Warehouse, month: Month, hive_root: Path, model_id: str, repeat: int, check: bool) -> None:
    """Opens beside the reference reader, the leaderboard's first use and one model's trend (best of ``repeat``)."""
    month.load = os.getloadavg()[0]
    month.opens = qs.measure_opens(wh, repeat)
    month.reference_s = min(qs.hive_open(hive_root) for _ in range(repeat))
    boards = []
    for _ in range(repeat):
        with connect(wh) as con:
            board, seconds = qs.timed(qs.duck_leaderboard, con)
        boards.append(seconds)
    month.board_s = min(boards)
    with connect(wh) as con:
        trends = [qs.timed(qs.duck_trend, con, model_id) for _ in range(repeat)]
    month.trend_s = min(s for _, s in trends)
    if check:
        qs.assert_same(
            f"{month.label} leaderboard",
            board,
            qs.pandas_leaderboard(hive_root, wh.settings.leaderboard_min_goodput),
            qs.LEADERBOARD_KEYS,
        )
        expected = qs.pandas_trend(hive_root, model_id, pushdown=True)
        qs.assert_same(f"{month.label} trend", trends[-1][0], expected, ["eval_date"])
        month.checked = "ok"


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


STORAGE_HEADER = (
    f"{'month':<8}{'nights':>7}{'runs':>7}{'snaps':>7}{'meta.json':>10}{'KiB':>7}{'lists':>7}{'KiB':>7}"
    f"{'manifests':>10}{'KiB':>7}{'B/live':>7}{'live files':>11}{'on disk':>8}{'MiB':>7}{'catalog':>9}"
    f"{'cache':>7}{'KiB':>7}"
)
TIMES_HEADER = (
    f"{'month':<8}{'publish p50':>12}{'p95':>7}{'cpu p95':>8}"
    f"{'maint p50':>10}{'max':>7}{'merged':>8}{'expired':>8}{'deleted':>8}"
    f"{'open cold':>10}{'warm':>7}{'new proc':>9}{'reference':>10}{'ref/warm':>9}{'board':>7}{'trend':>7}"
    f"{'check':>6}{'load':>6}"
)


def storage_row(m: Month) -> str:
    s = m.storage
    per_live = s.get("manifests_bytes", 0) / max(1, s.get("live", 0))
    return (
        f"{m.label:<8}{m.nights:>7}{m.runs:>7}{s.get('snapshots', 0):>7}{s.get('json', 0):>10}"
        f"{s.get('json_bytes', 0) / 1024:>7.0f}{s.get('lists', 0):>7}{s.get('lists_bytes', 0) / 1024:>7.0f}"
        f"{s.get('manifests', 0):>10}{s.get('manifests_bytes', 0) / 1024:>7.0f}{per_live:>7.0f}{s.get('live', 0):>11}"
        f"{s.get('data', 0):>8}{s.get('data_bytes', 0) / 2**20:>7.0f}{s.get('catalog_bytes', 0) / 1024:>8.0f}K"
        f"{s.get('cache', 0):>7}{s.get('cache_bytes', 0) / 1024:>7.0f}"
    )


def times_row(m: Month) -> str:
    o = m.opens
    assert o is not None
    return (
        f"{m.label:<8}{p(m.publish, 50):>11.3f}s{p(m.publish, 95):>6.3f}s{p(m.publish_cpu, 95):>7.3f}s"
        f"{p(m.maintenance, 50):>9.2f}s"
        f"{max(m.maintenance):>6.2f}s{m.merged:>8}{m.expired:>8}{m.deleted:>8}{o.cold:>9.3f}s{o.warm:>6.3f}s"
        f"{o.new_process:>8.3f}s{m.reference_s:>9.3f}s{m.reference_s / o.warm:>8.1f}x{m.board_s:>6.2f}s"
        f"{m.trend_s:>6.2f}s{m.checked:>6}{m.load:>6.1f}"
    )


def verdicts(months: list[Month], retention_nights: int) -> list[str]:
    last = months[-1]
    assert last.opens is not None
    p95 = p(last.publish, 95)
    ratio = last.reference_s / last.opens.warm
    lines = [
        f"publish p95 in {last.label}: {p95:.3f} s ({'met' if p95 <= GOAL_PUBLISH_P95 else 'MISSED'} <= "
        f"{GOAL_PUBLISH_P95} s; CPU p95 {p(last.publish_cpu, 95):.3f} s, load {last.load:.1f})",
        f"warm open in {last.label}: {last.opens.warm:.3f} s = 1/{ratio:.0f} of the reference reader's "
        f"{last.reference_s:.3f} s ({'met' if ratio >= GOAL_OPEN_RATIO else 'MISSED'} <= 1/{GOAL_OPEN_RATIO:.0f})",
    ]
    # The first month whose window is full (it has more nights than the retention) is the baseline.
    full = [m for m in months if sum(x.nights for x in months[: months.index(m) + 1]) > retention_nights]
    if len(full) >= 2:
        base = full[0].storage
        for kind, what in (("json", "metadata.json"), ("lists", "manifest lists"), ("snapshots", "snapshots")):
            key = kind if kind == "snapshots" else f"{kind}_bytes"
            grown = last.storage.get(key, 0) / max(1, base.get(key, 0))
            unit = "" if kind == "snapshots" else " bytes"
            lines.append(
                f"{what}{unit} in {last.label} / {full[0].label}: {grown:.2f} "
                f"({'flat' if grown <= FLAT_TOLERANCE else 'GROWING'}, tolerance {FLAT_TOLERANCE})"
            )
        before = base.get("manifests_bytes", 0) / max(1, base.get("live", 0))
        after = last.storage.get("manifests_bytes", 0) / max(1, last.storage.get("live", 0))
        lines.append(
            f"manifest bytes per live data file {full[0].label} -> {last.label}: {before:.0f} -> {after:.0f} "
            "(manifests list the live data files: they grow with the history, not with the commits)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, help="simulated nights (default 365; --small 40)")
    parser.add_argument("--models", type=int, help="models evaluated every night (default 20; --small 3)")
    parser.add_argument("--small", action="store_true", help="40 nights x 3 models, query_scaling's small runs")
    parser.add_argument(
        "--retention-nights",
        type=int,
        default=max(1, math.ceil(settings.snapshot_retention_hours / 24)),
        help="nights of snapshots kept (default: EVALS_SNAPSHOT_RETENTION_HOURS / 24, rounded up)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each read (best is reported)")
    parser.add_argument("--check", choices=("month", "last", "none"), default="month", help="pandas check when")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--dir", type=Path, help="parent directory of the temp warehouse (default: $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows up when piped
    nights = args.nights or (40 if args.small else 365)
    scale = qs.SMALL if args.small else qs.FULL
    models = fleet(args.models or (3 if args.small else 20), args.seed)
    root = Path(tempfile.mkdtemp(prefix="evals-year-", dir=args.dir))
    hive_root, cache_dir = root / "hive", root / "manifest-cache"
    # The bench's own warehouse and manifest cache (maintenance prunes it), never the repository's.
    os.environ["EVALS_WAREHOUSE"] = f"file://{root}/warehouse"
    os.environ["EVALS_MANIFEST_CACHE_DIR"] = str(cache_dir)
    os.environ.pop("EVALS_CATALOG_URI", None)
    wh = Warehouse(f"file://{root}/warehouse")
    qs.prepare(root, scale, args.seed, [])
    print(
        f"== {nights} nights x {len(models)} models from {qs.START}, {scale.acc_rows_per_run} accuracy rows +"
        f" {len(qs.LOADS)} latency levels + {scale.samples_per_run:,} latency samples per run; file:// warehouse,"
        f" SQL catalog (SQLite) in {root}; compaction after {wh.settings.compact_after_days} days, snapshots of"
        f" the last {args.retention_nights} nights kept"
    )
    months: list[Month] = []
    starts: list[float] = []  # wall clock (epoch seconds) at the start of each night
    revisions = [0] * len(models)
    started = time.perf_counter()
    try:
        for night in range(nights):
            today = qs.START + dt.timedelta(days=night)
            if not months or months[-1].label != f"{today:%Y-%m}":
                months.append(Month(f"{today:%Y-%m}"))
            month = months[-1]
            starts.append(time.time())
            for spec in night_specs(models, night, revisions, night * len(models)):
                wall, cpu = publish(wh, spec, scale, hive_root, args.seed)
                month.publish.append(wall)
                month.publish_cpu.append(cpu)
            window_start = starts[max(0, night - args.retention_nights + 1)]
            maintenance(wh, today, dt.timedelta(seconds=time.time() - window_start), month)
            month.nights += 1
            if night % 7 == 6:
                print(
                    f"  night {night + 1} ({today}): publish p95 {p(month.publish[-7 * len(models) :], 95):.3f} s,"
                    f" maintenance {month.maintenance[-1]:.2f} s, {time.perf_counter() - started:.0f} s elapsed,"
                    f" load {os.getloadavg()[0]:.1f}"
                )
            last_of_month = night == nights - 1 or (today + dt.timedelta(days=1)).month != today.month
            if last_of_month:
                month.runs = (night + 1) * len(models)
                month.storage = storage(wh, root, cache_dir)
                check = args.check == "month" or (args.check == "last" and night == nights - 1)
                measure(wh, month, hive_root, models[0].model_id, args.repeat, check)
                if len(months) == 1:
                    print(f"  S {STORAGE_HEADER}\n  T {TIMES_HEADER}")
                print(f"  S {storage_row(month)}\n  T {times_row(month)}")
        print(f"\n== after {nights} nights ({time.perf_counter() - started:.0f} s): storage")
        print(f"  {STORAGE_HEADER}")
        for month in months:
            print(f"  {storage_row(month)}")
        print("== times (reads: best of --repeat; publish over the month's runs; maintenance per night)")
        print(f"  {TIMES_HEADER}")
        for month in months:
            print(f"  {times_row(month)}")
        print("== goal")
        for line in verdicts(months, args.retention_nights):
            print(f"  {line}")
        if args.check != "none":
            print("  leaderboard and trend answers equal pandas over the Hive copy (asserted)")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
