"""The offline models: the converted SmolLM2 checkpoint and the tiny random Llama."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals.checkpoints.cache import COMPLETE_MARKER, build_once
from evals.checkpoints.models import smollm2_gguf_path, tiny_model_key


def test_gguf_is_found_without_importing_llama_cpp() -> None:
    path = smollm2_gguf_path()
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000
    assert "llama_cpp" not in sys.modules


def test_tiny_model_is_a_loadable_llama_with_chat_template(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 2
    assert list(tiny_model_dir.glob("*.safetensors")) and not list(tiny_model_dir.glob("*.bin"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert sum(p.numel() for p in model.parameters()) < 5_000_000


def test_tiny_model_key_depends_on_seed() -> None:
    assert tiny_model_key(0) == tiny_model_key(0) != tiny_model_key(1)


@pytest.mark.slow
def test_smollm2_answers_like_the_real_model(smollm2_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


_BUILDER = """
import sys, time
from pathlib import Path
from evals.checkpoints.cache import build_once

def build(tmp):
    with open(sys.argv[2], "a") as handle:
        handle.write("built\\n")
    (tmp / "data").write_text("x" * 1000)
    time.sleep(0.3)

build_once(Path(sys.argv[1]), build)
"""


def test_build_once_is_safe_across_processes(tmp_path: Path) -> None:
    final, log = tmp_path / "entry", tmp_path / "log"
    procs = [subprocess.Popen([sys.executable, "-c", _BUILDER, str(final), str(log)]) for _ in range(3)]
    assert [proc.wait(60) for proc in procs] == [0, 0, 0]
    assert log.read_text() == "built\n"
    assert (final / "data").read_text() == "x" * 1000 and (final / COMPLETE_MARKER).exists()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_build_once_failure_leaves_nothing(tmp_path: Path) -> None:
    def broken(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        build_once(tmp_path / "entry", broken)
    assert not (tmp_path / "entry").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    # An incomplete leftover (e.g. from a killed process on another filesystem) is rebuilt, not trusted.
    (tmp_path / "entry").mkdir()
    build_once(tmp_path / "entry", lambda tmp: (tmp / "ok").write_text("y"))
    assert (tmp_path / "entry" / "ok").read_text() == "y"
