"""Regenerate the offline BIG-bench task data (smoke and guardrails suites) from the BIG-bench PyPI sdist.

Usage::

    python -m evals.accuracy.bigbench_convert                 # pip download bigbench==1.0.0, rewrite all data
    python -m evals.accuracy.bigbench_convert --source DIR    # an already extracted sdist (or the .tar.gz)
    python -m evals.accuracy.bigbench_convert --check         # compare the committed data, write nothing
    python -m evals.accuracy.bigbench_convert --bundle guardrails --write-fixture tests/fixtures/bigbench_sdist

The converted JSONL files are committed, so a fresh machine never needs the 358 MB sdist; this script is how they
were made and how anyone can check them. BIG-bench is Apache-2.0 (see the README next to each data folder).
``--write-fixture`` writes an sdist-shaped tree holding only the source records the conversion keeps (plus the
next-ranked records of each subsetted file), so tests can rerun the conversion in CI without the sdist.
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
TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"
DATA_DIR = TASKS_DIR / "bigbench_smoke" / "data"
FIXTURE_MANIFEST = "FIXTURE.json"
SUBSET_RULE = (
    "per source file, the `per_file` examples with the smallest sha256 of their canonical JSON "
    "(json.dumps(example, sort_keys=True, ensure_ascii=False), UTF-8), kept in source order"
)


@dataclass(frozen=True)
class Source:
    """One BIG-bench task.json (or several, concatenated in order) turned into one JSONL file per split."""

    task_json: str | tuple[str, ...]  # relative to bigbench/benchmark_tasks
    kind: str  # "mc" (target_scores) or "gen" (target)
    name: str
    fewshot_pool: int = 0  # the first N examples become the "train" split (few-shot pool), the rest "test"
    # Keep a deterministic subset of each file (SUBSET_RULE); each doc then names its file and example hash.
    per_file: int | None = None

    @property
    def files(self) -> tuple[str, ...]:
        return (self.task_json,) if isinstance(self.task_json, str) else self.task_json


@dataclass(frozen=True)
class Bundle:
    """The converted data of one suite: its folder and its sources."""

    name: str
    data_dir: Path
    sources: tuple[Source, ...]
    licence: str = "Apache-2.0"


SOURCES = (
    Source("general_knowledge/task.json", "mc", "general_knowledge"),
    Source("emoji_movie/task.json", "mc", "emoji_movie"),
    Source("arithmetic/1_digit_addition/task.json", "gen", "arithmetic_1d_add", fewshot_pool=5),
)

BBQ_CATEGORIES = (
    "age",
    "disability_status",
    "gender_identity",
    "nationality",
    "physical_appearance",
    "race_ethnicity",
    "religion",
    "ses",
    "sexual_orientation",
)
HHH_PER_FILE = 3
BBQ_PER_FILE = 2
GUARDRAILS_SOURCES = (
    *(
        Source(f"hhh_alignment/{part}/task.json", "mc", f"hhh_{part}", per_file=HHH_PER_FILE)
        for part in ("harmless", "honest", "helpful", "other")
    ),
    *(
        Source(
            tuple(f"bbq_lite_json/{c}_{context}/task.json" for c in BBQ_CATEGORIES),
            "mc",
            f"bbq_lite_{context}",
            per_file=BBQ_PER_FILE,
        )
        for context in ("ambig", "disambig")
    ),
)

SMOKE = Bundle("smoke", DATA_DIR, SOURCES)
GUARDRAILS = Bundle("guardrails", TASKS_DIR / "guardrails" / "data" / "bigbench", GUARDRAILS_SOURCES)
BUNDLES = {bundle.name: bundle for bundle in (SMOKE, GUARDRAILS)}


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


def example_key(example: dict[str, Any]) -> str:
    """The sha256 that ranks an example for a subset (SUBSET_RULE)."""
    return hashlib.sha256(json.dumps(example, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def select(examples: list[dict[str, Any]], keep: int | None) -> list[int]:
    """Indices of the examples a subset keeps, in source order (all of them when ``keep`` is None)."""
    if keep is None:
        return list(range(len(examples)))
    ranked = sorted(range(len(examples)), key=lambda i: (example_key(examples[i]), i))
    return sorted(ranked[:keep])


def convert(task: dict[str, Any], source: Source) -> dict[str, list[dict[str, Any]]]:
    """The docs of one task.json, split into ``{"train": [...], "test": [...]}`` (train only with a pool)."""
    return convert_many([task], source)


def convert_many(tasks: list[dict[str, Any]], source: Source) -> dict[str, list[dict[str, Any]]]:
    """The docs of ``source``'s task.json files (in ``source.files`` order), subset and split."""
    make = _mc_doc if source.kind == "mc" else _gen_doc
    docs = []
    for path, task in zip(source.files, tasks, strict=True):
        examples = task["examples"]
        for index in select(examples, source.per_file):
            doc = make(examples[index])
            if source.per_file is not None:
                doc["source"] = f"{path.removesuffix('/task.json')}@{example_key(examples[index])[:12]}"
            docs.append(doc)
    splits = {"test": docs[source.fewshot_pool :]}
    if source.fewshot_pool:
        splits["train"] = docs[: source.fewshot_pool]
    return splits


def _jsonl(docs: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n" for doc in docs).encode()


def render(
    tasks_root: Path, bundle: Bundle = SMOKE, *, source_sha256: dict[str, str] | None = None
) -> dict[str, bytes]:
    """Every data file (relative name -> bytes), including MANIFEST.json with the source and output hashes.

    ``source_sha256`` (task.json path -> sha256) stands in for the hashes of the files read: a fixture's files
    are excerpts, its FIXTURE.json records the hashes of the real files they were cut from.
    """
    files: dict[str, bytes] = {}
    manifest: dict[str, Any] = {"source": SDIST, "licence": bundle.licence, "tasks": {}}
    for source in bundle.sources:
        raws = [(tasks_root / path).read_bytes() for path in source.files]
        splits = convert_many([json.loads(raw) for raw in raws], source)
        hashes = [
            (source_sha256 or {}).get(path) or hashlib.sha256(raw).hexdigest()
            for path, raw in zip(source.files, raws, strict=True)
        ]
        entry: dict[str, Any] = {
            "task_json": source.task_json if isinstance(source.task_json, str) else list(source.files),
            "sha256": hashes[0] if isinstance(source.task_json, str) else hashes,
        }
        if source.per_file is not None:
            entry["subset"] = {"per_file": source.per_file, "rule": SUBSET_RULE}
        for split, docs in sorted(splits.items()):
            name = f"{source.name}.{split}.jsonl"
            files[name] = _jsonl(docs)
            entry[split] = {"file": name, "rows": len(docs), "sha256": hashlib.sha256(files[name]).hexdigest()}
        manifest["tasks"][source.name] = entry
    files["MANIFEST.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return files


def fixture(tasks_root: Path, bundle: Bundle, *, margin: int = 2) -> dict[str, bytes]:
    """An sdist-shaped excerpt (path under benchmark_tasks -> bytes) that converts to the same data files.

    Each task.json keeps its metadata and the examples the conversion keeps, plus the ``margin`` next-ranked ones
    of a subsetted file (so the subset rule is exercised); FIXTURE.json records the real files' sha256.
    """
    out: dict[str, bytes] = {}
    hashes: dict[str, str] = {}
    for source in bundle.sources:
        for path in source.files:
            raw = (tasks_root / path).read_bytes()
            hashes[path] = hashlib.sha256(raw).hexdigest()
            task = json.loads(raw)
            examples = task["examples"]
            keep = None if source.per_file is None else source.per_file + margin
            excerpt = {**task, "examples": [examples[i] for i in select(examples, keep)]}
            out[path] = (json.dumps(excerpt, indent=1, ensure_ascii=False) + "\n").encode()
    out[FIXTURE_MANIFEST] = (json.dumps({"source": SDIST, "sha256": hashes}, indent=2, sort_keys=True) + "\n").encode()
    return out


def recorded_hashes(tasks_root: Path) -> dict[str, str] | None:
    """The real files' sha256 recorded by an excerpt (``--write-fixture``), or None for a real sdist."""
    path = tasks_root / FIXTURE_MANIFEST
    if not path.is_file():
        return None
    log.info("%s is an excerpt: the manifest takes the source hashes it records", tasks_root)
    return dict(json.loads(path.read_text())["sha256"])


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
    wanted = {path for bundle in BUNDLES.values() for s in bundle.sources for path in s.files} | {FIXTURE_MANIFEST}
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
    parser.add_argument("--bundle", choices=[*BUNDLES, "all"], default="all", help="which suite's data (default all)")
    parser.add_argument("--out", type=Path, help="data dir to write (default: the package's; one bundle only)")
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    parser.add_argument("--write-fixture", type=Path, metavar="DIR", help="write an sdist-shaped excerpt instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    bundles = list(BUNDLES.values()) if args.bundle == "all" else [BUNDLES[args.bundle]]
    if args.out is not None and len(bundles) != 1:
        parser.error("--out needs --bundle")
    stale: list[Path] = []
    with sdist_tasks_root(args.source) as tasks_root:
        for bundle in bundles:
            out = args.out or bundle.data_dir
            if args.write_fixture is not None:
                _write(fixture(tasks_root, bundle), args.write_fixture / TASKS_ROOT, skip_existing_manifest=True)
                continue
            files = render(tasks_root, bundle, source_sha256=recorded_hashes(tasks_root))
            if args.check:
                stale += [out / name for name in diff(files, out)]
            else:
                _write(files, out)
    if args.check:
        for path in stale:
            print(f"differs: {path}")
        print("ok" if not stale else f"{len(stale)} file(s) differ")
        return 1 if stale else 0
    return 0


def _write(files: dict[str, bytes], out: Path, *, skip_existing_manifest: bool = False) -> None:
    for name, content in files.items():
        path = out / name
        if skip_existing_manifest and name == FIXTURE_MANIFEST and path.is_file():
            merged = json.loads(path.read_text())
            merged["sha256"].update(json.loads(content)["sha256"])
            content = (json.dumps(merged, indent=2, sort_keys=True) + "\n").encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
