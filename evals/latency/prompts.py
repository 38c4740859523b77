"""Prompts for a scenario: synthetic ones of exact token lengths from the checkpoint's tokenizer, or JSONL files."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError
from evals.latency.scenario import (
    JsonlPrompts,
    SyntheticPrompts,
    TokenLength,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prompt:
    """One prompt: raw text (completions, or a single user turn in chat) or chat messages."""

    text: str | None = None
    messages: tuple[dict[str, Any], ...] | None = None
    tokens: int | None = None  # tokenizer count of ``text`` without special tokens, when known
    context_tokens: int | None = None  # a prompt-length sweep's step (retrieved-context tokens) it was made for

    def as_messages(self) -> list[dict[str, Any]]:
        if self.messages is not None:
            return [dict(message) for message in self.messages]
        return [{"role": "user", "content": self.text or ""}]


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a checkpoint directory (or a cached hub id, offline); a GGUF file is read directly."""
    from transformers import AutoTokenizer

    target = Path(path)
    try:
        if target.is_file() and target.suffix == ".gguf":
            return AutoTokenizer.from_pretrained(str(target.parent), gguf_file=target.name)
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load a tokenizer from {path} (synthetic prompts need the checkpoint's tokenizer; "
            f"pass a tokenizer directory, CLI: --tokenizer DIR): {exc}"
        ) from exc


def sample_lengths(spec: TokenLength, count: int, rng: random.Random) -> list[int]:
    """``count`` token lengths drawn from ``spec`` with ``rng``."""
    if spec.distribution == "fixed":
        return [spec.mean] * count
    if spec.distribution == "uniform":
        return [rng.randint(spec.low, spec.high) for _ in range(count)]
    stddev = spec.stddev or 0.0
    return [min(spec.high, max(spec.low, round(rng.gauss(spec.mean, stddev)))) for _ in range(count)]


_WORDS_CACHE: dict[int, tuple[PreTrainedTokenizerBase, list[int]]] = {}


def _word_tokens(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids that decode to one plain word with a leading space: they re-encode to themselves."""
    cached = _WORDS_CACHE.get(id(tokenizer))
    if cached is not None and cached[0] is tokenizer:
        return cached[1]
    special = set(tokenizer.all_special_ids)
    ids = [i for i in range(len(tokenizer)) if i not in special]
    texts = tokenizer.batch_decode([[i] for i in ids])
    words = [
        i
        for i, text in zip(ids, texts, strict=True)
        if len(text) > 2 and text[0] == " " and text[1:].isascii() and text[1:].isalpha() and text[1:].islower()
    ]
    if len(words) < 100:
        raise ConfigError(f"tokenizer {tokenizer.name_or_path!r} has too few plain word tokens for synthetic prompts")
    _WORDS_CACHE[id(tokenizer)] = (tokenizer, words)
    return words


def random_text(tokenizer: PreTrainedTokenizerBase, target: int, rng: random.Random) -> str:
    """Random plain words that encode to exactly ``target`` tokens (without special tokens), when it converges."""
    words = _word_tokens(tokenizer)
    ids = [rng.choice(words) for _ in range(target)]
    # Decoding then encoding can merge or split pieces; a few rounds converge on the exact length.
    for _ in range(8):
        text = str(tokenizer.decode(ids))
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == target:
            break
        ids = encoded[:target] + [rng.choice(words) for _ in range(target - len(encoded))]
    return text


def synthetic_prompts(
    spec: SyntheticPrompts, tokenizer: PreTrainedTokenizerBase, seed: int, count: int
) -> list[Prompt]:
    """``count`` prompts of random words whose token counts follow ``spec.input_tokens`` exactly.

    Same tokenizer and seed, same prompts. The count excludes special tokens (BOS, chat template).
    """
    rng = random.Random(seed)
    prompts = []
    for target in sample_lengths(spec.input_tokens, count, rng):
        text = random_text(tokenizer, target, rng)
        prompts.append(Prompt(text=text, tokens=len(tokenizer.encode(text, add_special_tokens=False))))
    return prompts


def jsonl_prompts(spec: JsonlPrompts, base_dir: Path, api: str) -> list[Prompt]:
    """Prompts from a JSONL file: ``{"prompt": "..."}`` lines, or ``{"messages": [...]}`` for the chat API."""
    path = Path(spec.path)
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise ConfigError(f"prompt file {path} does not exist")
    prompts: list[Prompt] = []
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not JSON: {exc}") from exc
            prompts.append(_prompt_of(record, f"{path}:{number}", api))
            if spec.limit is not None and len(prompts) >= spec.limit:
                break
    if not prompts:
        raise ConfigError(f"prompt file {path} holds no prompts")
    return prompts


def _prompt_of(record: Any, where: str, api: str) -> Prompt:
    if isinstance(record, dict) and isinstance(record.get("prompt"), str):
        return Prompt(text=record["prompt"])
    if isinstance(record, dict) and isinstance(record.get("messages"), list):
        if api != "chat":
            raise ConfigError(f"{where}: 'messages' need the chat API; the completions API takes 'prompt'")
        messages = record["messages"]
        if not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
            raise ConfigError(f"{where}: every message needs 'role' and 'content'")
        return Prompt(messages=tuple(messages))
    raise ConfigError(f"{where}: expected an object with 'prompt' (string) or 'messages' (list)")
