"""The BIG-bench converter, run in CI on an sdist-shaped excerpt of the real task files (no 358 MB sdist needed)."""

import hashlib
import json
import random
import tarfile
from pathlib import Path

import pytest

from evals.accuracy.bigbench_convert import (
    BUNDLES,
    FIXTURE_MANIFEST,
    GUARDRAILS,
    SMOKE,
    TASKS_ROOT,
    Source,
    convert,
    convert_many,
    diff,
    example_key,
    fixture,
    main,
    recorded_hashes,
    render,
    sdist_tasks_root,
    select,
)

FIXTURE = Path(__file__).parent / "fixtures" / "bigbench_sdist"
FIXTURE_TASKS = FIXTURE / TASKS_ROOT


def test_mc_and_generation_conversion() -> None:
    mc = convert({"examples": [{"input": "q", "target_scores": {"a": 0, "b": 1, "c": 0}}]}, Source("x", "mc", "x"))
    assert mc == {"test": [{"input": "q", "choices": ["a", "b", "c"], "label": 1}]}
    gen = convert(
        {"examples": [{"input": f"q{i}", "target": [str(i), "other"]} for i in range(3)]},
        Source("y", "gen", "y", fewshot_pool=1),
    )
    assert gen["train"] == [{"input": "q0", "target": "0", "targets": ["0", "other"]}]
    assert [d["input"] for d in gen["test"]] == ["q1", "q2"]


def test_subset_keeps_the_smallest_hashes_in_source_order_whatever_the_file_order() -> None:
    examples = [{"input": f"q{i}", "target_scores": {"a": i % 2, "b": 1 - i % 2}} for i in range(30)]
    kept = select(examples, 5)
    assert kept == sorted(kept) and len(kept) == 5
    assert sorted(example_key(examples[i]) for i in kept) == sorted(example_key(e) for e in examples)[:5]
    shuffled = examples[:]
    random.Random(7).shuffle(shuffled)
    assert {shuffled[i]["input"] for i in select(shuffled, 5)} == {examples[i]["input"] for i in kept}
    assert select(examples, None) == list(range(30))


def test_merged_sources_name_each_doc_origin() -> None:
    first = {"examples": [{"input": f"a{i}", "target_scores": {"x": 1, "y": 0}} for i in range(4)]}
    second = {"examples": [{"input": f"b{i}", "target_scores": {"x": 0, "y": 1}} for i in range(4)]}
    source = Source(("t/a/task.json", "t/b/task.json"), "mc", "ab", per_file=2)
    docs = convert_many([first, second], source)["test"]
    assert len(docs) == 4
    assert [d["source"].split("@")[0] for d in docs] == ["t/a", "t/a", "t/b", "t/b"]
    examples = {example_key(e)[:12]: e for e in first["examples"] + second["examples"]}
    assert all(examples[d["source"].split("@")[1]]["input"] == d["input"] for d in docs)


@pytest.mark.parametrize("bundle", list(BUNDLES.values()), ids=list(BUNDLES))
def test_committed_data_matches_its_manifest(bundle) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((bundle.data_dir / "MANIFEST.json").read_text())
    assert manifest["source"] == "bigbench==1.0.0" and manifest["licence"] == "Apache-2.0"
    assert set(manifest["tasks"]) == {s.name for s in bundle.sources}
    for entry in manifest["tasks"].values():
        for split in ("train", "test"):
            if split in entry:
                data = (bundle.data_dir / entry[split]["file"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == entry[split]["sha256"]
                assert data.count(b"\n") == entry[split]["rows"]


@pytest.mark.parametrize("bundle", list(BUNDLES.values()), ids=list(BUNDLES))
def test_committed_data_regenerates_from_the_fixture(bundle) -> None:  # type: ignore[no-untyped-def]
    # The fixture holds the real source records the conversion keeps (plus the next-ranked ones of each subsetted
    # file); FIXTURE.json pins the sha256 of the real task.json files, which MANIFEST.json must record too.
    files = render(FIXTURE_TASKS, bundle, source_sha256=recorded_hashes(FIXTURE_TASKS))
    assert diff(files, bundle.data_dir) == []


def test_fixture_is_what_write_fixture_makes_of_itself() -> None:
    # Cutting the fixture again from the fixture changes nothing: it holds exactly the records it claims to.
    for bundle in BUNDLES.values():
        for path, content in fixture(FIXTURE_TASKS, bundle).items():
            if path != FIXTURE_MANIFEST:
                assert (FIXTURE_TASKS / path).read_bytes() == content, path


def test_guardrails_subsets_are_balanced_and_traceable() -> None:
    manifest = json.loads((GUARDRAILS.data_dir / "MANIFEST.json").read_text())
    for source in GUARDRAILS.sources:
        entry = manifest["tasks"][source.name]
        assert entry["subset"]["per_file"] == source.per_file and "sha256" in entry["subset"]["rule"]
        assert entry["test"]["rows"] == source.per_file * len(source.files)
        docs = [json.loads(line) for line in (GUARDRAILS.data_dir / entry["test"]["file"]).read_text().splitlines()]
        origins = [d["source"].split("@")[0] + "/task.json" for d in docs]
        assert {o: origins.count(o) for o in origins} == dict.fromkeys(source.files, source.per_file)
        assert all(0 <= d["label"] < len(d["choices"]) for d in docs)


def test_check_cli_on_a_tarball_of_the_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tarball = tmp_path / "bigbench-1.0.0.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(FIXTURE / "bigbench", arcname="bigbench-1.0.0/bigbench")
    assert main(["--source", str(tarball), "--check"]) == 0
    assert capsys.readouterr().out.strip().endswith("ok")
    with sdist_tasks_root(tarball) as root:
        assert (root / "hhh_alignment" / "harmless" / "task.json").is_file()
    out = tmp_path / "smoke"
    assert main(["--source", str(FIXTURE), "--bundle", "smoke", "--out", str(out)]) == 0
    assert diff(render(FIXTURE_TASKS, SMOKE, source_sha256=recorded_hashes(FIXTURE_TASKS)), out) == []
    (out / "emoji_movie.test.jsonl").write_text("changed\n")
    assert main(["--source", str(FIXTURE), "--bundle", "smoke", "--out", str(out), "--check"]) == 1
    assert "differs:" in capsys.readouterr().out
