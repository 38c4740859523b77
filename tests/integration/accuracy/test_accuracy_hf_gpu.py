"""The hf backend on a CUDA device in bf16 (``pytest -m gpu`` on a GPU worker; skipped where CUDA is absent)."""

from pathlib import Path

import pytest

from evals.accuracy import run_suite
from evals.settings import get_settings

pytestmark = [pytest.mark.gpu, pytest.mark.integration]


def test_hf_backend_runs_the_smoke_suite_on_cuda_in_bf16(smollm2_dir: Path, tmp_path: Path) -> None:
    settings = get_settings(cache_dir=tmp_path, accuracy_device="cuda", accuracy_dtype="bfloat16")
    result = run_suite(
        smollm2_dir,
        "smoke",
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        revision="g" * 40,
        backend="hf",
        limit=25,
        settings=settings,
    )
    score = {(r["task"], r["metric"], r["filter"]): r["value"] for r in result.rows}
    assert score["bigbench_general_knowledge", "acc", "none"] > 0.3, score
    assert result.provenance["hardware"]["gpu_count"] >= 1
    assert result.record_fields()["dtype"] == "bfloat16"
