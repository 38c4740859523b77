"""The vllm backend on a GPU worker (skipped without CUDA and the gpu extra)."""

import importlib.util
from pathlib import Path

import pytest

from evals.accuracy import run_suite
from evals.settings import get_settings

pytestmark = [pytest.mark.gpu, pytest.mark.integration]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs the gpu extra (vllm)")
def test_vllm_runs_the_smoke_suite(smollm2_dir: Path, tmp_path: Path) -> None:
    settings = get_settings(cache_dir=tmp_path, accuracy_vllm_gpu_memory_utilization=0.3)
    result = run_suite(
        smollm2_dir,
        "smoke",
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        revision="v" * 40,
        backend="vllm",
        limit=25,
        settings=settings,
    )
    score = {(r["task"], r["metric"], r["filter"]): r["value"] for r in result.rows}
    assert score["bigbench_general_knowledge", "acc", "none"] > 0.3, score
    assert result.provenance["hardware"]["gpu_count"] >= 1
