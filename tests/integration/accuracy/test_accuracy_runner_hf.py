"""End to end on real (tiny and SmolLM2) checkpoints with lm-eval's hf backend, offline."""

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from evals.accuracy import load_suite, run_suite
from evals.accuracy.preflight import BrokenCheckpoint
from evals.accuracy.suites import task_manager
from evals.checkpoints import CheckpointRef
from evals.pipeline.outcome import merge
from evals.pipeline.plan import Options
from evals.pipeline.publish import publish, run_context
from evals.settings import get_settings
from evals.warehouse import Warehouse

pytestmark = pytest.mark.integration

WHEN = dt.datetime(2026, 11, 29, 2, 0, tzinfo=dt.UTC)
REVISION = "0" * 40
LIMIT = 8


class Interrupted(Exception):
    pass


def _settings(tmp_path: Path, **overrides: object):  # type: ignore[no-untyped-def]
    return get_settings(
        cache_dir=tmp_path / "cache",
        warehouse=f"file://{tmp_path / 'wh'}",
        accuracy_device="cpu",
        accuracy_progress="log",
        **overrides,
    )


def _direct(checkpoint: Path, limit: int) -> dict:  # type: ignore[type-arg]
    """What lm-eval's own simple_evaluate returns for the smoke suite, called the documented way."""
    from lm_eval import simple_evaluate

    suite = load_suite("smoke")
    seeds = suite.seeds
    return simple_evaluate(
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


def test_warehouse_values_equal_simple_evaluate(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    result = run_suite(tiny_model_dir, "smoke", model_id="test/tiny", revision=REVISION, limit=LIMIT, settings=settings)
    options = Options(suite="smoke", suite_version=result.provenance["suite_version"], scenario=None)
    ref = CheckpointRef("local", "test/tiny", REVISION)
    outcome = merge(result, None)
    record = publish(ref, options, run_context(WHEN), outcome, warehouse=Warehouse.from_settings(settings))
    stored = Warehouse.from_settings(settings).read_table("accuracy").to_pylist()
    direct = _direct(tiny_model_dir, LIMIT)["results"]

    checked = set()
    for row in stored:
        assert row["run_id"] == record.run_id
        key = f"{row['metric']},{row['filter']}"
        assert row["value"] == direct[row["task"]][key], (row["task"], key)  # exact, no tolerance
        checked.add((row["task"], key))
    assert ("bigbench_general_knowledge", "acc,none") in checked  # multiple choice
    assert ("bigbench_arithmetic_1d_add", "exact_match,strict-match") in checked  # generation
    assert ("bigbench_mc", "acc,none") in checked  # group
    runs = Warehouse.from_settings(settings).read_table("runs").to_pylist()
    # The run's config hash covers what produced it: here the accuracy half's provenance only.
    expected_hash = hashlib.sha256(json.dumps({"accuracy": result.provenance}, sort_keys=True, default=str).encode())
    assert [r["config_hash"] for r in runs] == [expected_hash.hexdigest()[:16]]
    assert runs[0]["versions"]["lm_eval"] and runs[0]["backend"] == "hf" and runs[0]["dtype"] == "float32"


def test_interrupted_run_resumes_from_the_request_cache(tiny_model_dir: Path, tmp_path: Path) -> None:
    # batch 1: every request is computed alone in both runs, so the resumed numbers are bit-identical.
    settings = _settings(tmp_path, accuracy_batch_size=1)
    reference = run_suite(tiny_model_dir, "smoke", model_id="test/tiny", revision="ref", limit=LIMIT, settings=settings)

    def stop_after_20(attr: str, answered: int) -> None:
        if answered >= 20:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_suite(
            tiny_model_dir,
            "smoke",
            model_id="test/tiny",
            revision=REVISION,
            limit=LIMIT,
            settings=settings,
            on_request=stop_after_20,
        )
    resumed = run_suite(
        tiny_model_dir, "smoke", model_id="test/tiny", revision=REVISION, limit=LIMIT, settings=settings
    )
    assert resumed.rows == [row | {"revision": REVISION} for row in reference.rows]
    assert resumed.model_calls == reference.model_calls - 20
    # A third run answers everything from the cache.
    again = run_suite(tiny_model_dir, "smoke", model_id="test/tiny", revision=REVISION, limit=LIMIT, settings=settings)
    assert again.model_calls == 0 and again.rows == resumed.rows


def test_broken_checkpoints_are_terminal_and_name_the_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(BrokenCheckpoint, match=r"no \*\.safetensors weights"):
        run_suite(empty, "smoke", model_id="m", revision="r", settings=settings)

    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_model_dir, corrupt)
    shard = next(corrupt.glob("*.safetensors"))
    with shard.open("r+b") as handle:
        handle.truncate(shard.stat().st_size // 2)
    with pytest.raises(BrokenCheckpoint, match=shard.name):
        run_suite(corrupt, "smoke", model_id="m", revision="r", settings=settings)


def test_unknown_task_fails_before_loading_the_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    from evals.errors import ConfigError

    suite = load_suite("smoke").model_copy(update={"tasks": ["no_such_task"]})
    with pytest.raises(ConfigError, match=r"unknown task.*no_such_task.*known tasks: bigbench_arithmetic_1d_add"):
        run_suite(tiny_model_dir, suite, model_id="m", revision="r", settings=_settings(tmp_path))


@pytest.mark.slow
def test_smollm2_beats_chance_on_the_smoke_suite(smollm2_dir: Path, tmp_path: Path) -> None:
    result = run_suite(
        smollm2_dir,
        "smoke",
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        revision="s" * 40,
        limit=25,
        settings=_settings(tmp_path),
    )
    score = {(r["task"], r["metric"], r["filter"]): r["value"] for r in result.rows}
    # chance: general_knowledge 0.143 (4-7 options), bigbench_mc 0.177, arithmetic ~0 (free-form number)
    assert score["bigbench_general_knowledge", "acc", "none"] > 0.3, score
    assert score["bigbench_mc", "acc", "none"] > 0.25, score
    assert score["bigbench_arithmetic_1d_add", "exact_match", "strict-match"] > 0.2, score
