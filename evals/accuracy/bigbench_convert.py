"""Regenerate the offline smoke-suite data (evals/tasks/bigbench_smoke/data) from the BIG-bench PyPI sdist.

Usage::

    python -m evals.accuracy.bigbench_convert                 # pip download bigbench==1.0.0, rewrite the data
    python -m evals.accuracy.bigbench_convert --source DIR    # an already extracted sdist (or the .tar.gz)
    python -m evals.accuracy.bigbench_convert --check         # compare the committed data, write nothing

The converted JSONL files are committed, so a fresh machine never needs the 358 MB sdist; this script is how they
were made and how anyone can check them. BIG-bench is Apache-2.0 (see the README next to the data).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SDIST = "bigbench==1.0.0"
TASKS_ROOT = "bigbench/benchmark_tasks"
DATA_DIR = Path(__file__).resolve().parent.parent / "tasks" / "bigbench_smoke" / "data"


@dataclass(frozen=True)
class Source:
    """One BIG-bench task.json turned into one JSONL file per split."""

    task_json: str  # relative to bigbench/benchmark_tasks
    kind: str  # "mc" (target_scores) or "gen" (target)
    name: str
    fewshot_pool: int = 0  # the first N examples become the "train" split (few-shot pool), the rest "test"


SOURCES = (
    Source("general_knowledge/task.json", "mc", "general_knowledge"),
    Source("emoji_movie/task.json", "mc", "emoji_movie"),
    Source("arithmetic/1_digit_addition/task.json", "gen", "arithmetic_1d_add", fewshot_pool=5),
)


def _mc_doc(example: dict[str, Any]) -> dict[str, Any]:
    scores: dict[str, float] = example["target_scores"]
    choices = list(scores)  # BIG-bench's own order, kept so the data matches the source file line by line
    best = max(scores.values())
    return {
        "input": example["input"],
        "choices": choices,
        "label": choices.index(next(c for c in choices if scores[c] == best)),
    }


def _gen_doc(example: dict[str, Any]) -> dict[str, Any]:
    target = example["target"]
    targets = [target] if isinstance(target, str) else list(target)
    return {"input": example["input"], "target": targets[0], "targets": targets}


def convert(task: dict[str, Any], source: Source) -> dict[str, list[dict[str, Any]]]:
    """The docs of one task.json, split into ``{"train": [...], "test": [...]}`` (train only with a pool)."""
    make = _mc_doc if source.kind == "mc" else _gen_doc
    docs = [make(example) for example in task["examples"]]
    splits = {"test": docs[source.fewshot_pool :]}
    if source.fewshot_pool:
        splits["train"] = docs[: source.fewshot_pool]
    return splits


def _jsonl(docs: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n" for doc in docs).encode()


def render(tasks_root: Path) -> dict[str, bytes]:
    """Every data file (relative name -> bytes), including MANIFEST.json with the source and output hashes."""
    files: dict[str, bytes] = {}
    manifest: dict[str, Any] = {"source": SDIST, "licence": "Apache-2.0", "tasks": {}}
    for source in SOURCES:
        raw = (tasks_root / source.task_json).read_bytes()
        splits = convert(json.loads(raw), source)
        entry: dict[str, Any] = {"task_json": source.task_json, "sha256": hashlib.sha256(raw).hexdigest()}
        for split, docs in sorted(splits.items()):
            name = f"{source.name}.{split}.jsonl"
            files[name] = _jsonl(docs)
            entry[split] = {"file": name, "rows": len(docs), "sha256": hashlib.sha256(files[name]).hexdigest()}
        manifest["tasks"][source.name] = entry
    files["MANIFEST.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return files


@contextmanager
def sdist_tasks_root(source: Path | None) -> Iterator[Path]:
    """The ``benchmark_tasks`` folder of an extracted sdist: given, extracted from a tarball, or pip-downloaded."""
    if source is not None and source.is_dir():
        yield _find_tasks_root(source)
        return
    with tempfile.TemporaryDirectory(prefix="bigbench-") as tmp:
        tmpdir = Path(tmp)
        if source is None:
            source = _pip_download(tmpdir)
        if source.is_dir():
            yield _find_tasks_root(source)
            return
        members = _task_members(source)
        with tarfile.open(source) as tar:
            tar.extractall(tmpdir / "x", members=members, filter="data")
        yield _find_tasks_root(tmpdir / "x")


def _task_members(tarball: Path) -> list[tarfile.TarInfo]:
    wanted = {s.task_json for s in SOURCES}
    with tarfile.open(tarball) as tar:
        return [m for m in tar.getmembers() if m.isfile() and any(m.name.endswith(f"{TASKS_ROOT}/{w}") for w in wanted)]


def _find_tasks_root(root: Path) -> Path:
    hits = sorted(root.glob(f"**/{TASKS_ROOT}"))
    if not hits:
        raise FileNotFoundError(f"no {TASKS_ROOT} folder under {root}")
    return hits[0]


def _pip_download(tmpdir: Path) -> Path:
    """Fetch the sdist with pip. Returns the tarball, or pip's unpacked tree when pip refuses to save it.

    bigbench 1.0.0 declares a ``bleurt @ file://...`` dependency, which current pip rejects after unpacking the
    sdist even with ``--no-deps``; ``--no-clean`` keeps the unpacked tree in TMPDIR, which holds the task files.
    """
    dest, scratch = tmpdir / "dist", tmpdir / "pip-tmp"
    scratch.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-clean",
        "--no-binary",
        ":all:",
        "-d",
        str(dest),
        SDIST,
    ]
    log.info("running %s", " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TMPDIR": str(scratch)})
    tarballs = sorted(dest.glob("bigbench-*.tar.gz")) if dest.exists() else []
    if tarballs:
        return tarballs[0]
    unpacked = sorted(scratch.glob(f"pip-*/bigbench*/{TASKS_ROOT}"))
    if unpacked:
        return unpacked[0].parent.parent
    raise RuntimeError(f"pip download {SDIST} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def diff(expected: dict[str, bytes], data_dir: Path) -> list[str]:
    """Names of data files that are missing or differ from ``expected``."""
    return sorted(n for n, b in expected.items() if not (data_dir / n).is_file() or (data_dir / n).read_bytes() != b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, help="extracted bigbench sdist dir or bigbench-1.0.0.tar.gz")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="data dir to write (default: the package's)")
    parser.add_argument("--check", action="store_true", help="only compare with the files in --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    with sdist_tasks_root(args.source) as tasks_root:
        files = render(tasks_root)
    if args.check:
        stale = diff(files, args.out)
        for name in stale:
            print(f"differs: {args.out / name}")
        print("ok" if not stale else f"{len(stale)} file(s) differ")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (args.out / name).write_bytes(content)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
