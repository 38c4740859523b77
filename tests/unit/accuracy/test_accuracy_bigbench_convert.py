import hashlib
import json
import os
from pathlib import Path

import pytest

from evals.accuracy.bigbench_convert import DATA_DIR, SOURCES, Source, convert, diff, render, sdist_tasks_root


def test_mc_and_generation_conversion() -> None:
    mc = convert({"examples": [{"input": "q", "target_scores": {"a": 0, "b": 1, "c": 0}}]}, Source("x", "mc", "x"))
    assert mc == {"test": [{"input": "q", "choices": ["a", "b", "c"], "label": 1}]}
    gen = convert(
        {"examples": [{"input": f"q{i}", "target": [str(i), "other"]} for i in range(3)]},
        Source("y", "gen", "y", fewshot_pool=1),
    )
    assert gen["train"] == [{"input": "q0", "target": "0", "targets": ["0", "other"]}]
    assert [d["input"] for d in gen["test"]] == ["q1", "q2"]


def test_committed_data_matches_its_manifest() -> None:
    manifest = json.loads((DATA_DIR / "MANIFEST.json").read_text())
    assert manifest["source"] == "bigbench==1.0.0" and manifest["licence"] == "Apache-2.0"
    assert set(manifest["tasks"]) == {s.name for s in SOURCES}
    for entry in manifest["tasks"].values():
        for split in ("train", "test"):
            if split in entry:
                data = (DATA_DIR / entry[split]["file"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == entry[split]["sha256"]
                assert data.count(b"\n") == entry[split]["rows"]


@pytest.mark.skipif(not os.environ.get("BIGBENCH_SDIST"), reason="set BIGBENCH_SDIST to an extracted sdist or tarball")
def test_committed_data_regenerates_from_the_sdist() -> None:
    with sdist_tasks_root(Path(os.environ["BIGBENCH_SDIST"])) as root:
        assert diff(render(root), DATA_DIR) == []
