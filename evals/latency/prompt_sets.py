"""A scenario's prompt set: JSONL or synthetic, shared-prefix prompts (prefix caching), multi-turn conversations."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.errors import ConfigError
from evals.latency.prompts import Prompt, jsonl_prompts, load_tokenizer, random_text, sample_lengths, synthetic_prompts
from evals.latency.scenario import JsonlPrompts, MultiTurnPrompts, RagPrompts, Scenario, SharedPrefixPrompts

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def _count(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def shared_prefix_prompts(
    spec: SharedPrefixPrompts, tokenizer: PreTrainedTokenizerBase, api: str, seed: int, count: int
) -> list[Prompt]:
    """``count`` prompts: prefix ``i % prefixes`` followed by a distinct part of ``spec.input_tokens`` tokens."""
    rng = random.Random(seed)
    prefixes = [random_text(tokenizer, spec.prefix_tokens, rng) for _ in range(spec.prefixes)]
    prompts = []
    for i, length in enumerate(sample_lengths(spec.input_tokens, count, rng)):
        prefix, question = prefixes[i % len(prefixes)], random_text(tokenizer, length, rng)
        if api == "chat":
            messages = ({"role": "system", "content": prefix}, {"role": "user", "content": question})
            prompts.append(Prompt(messages=messages, tokens=_count(tokenizer, prefix) + _count(tokenizer, question)))
        else:
            text = f"{prefix}\n\n{question}"
            prompts.append(Prompt(text=text, tokens=_count(tokenizer, text)))
    return prompts


def _conversations_from(path: Path) -> list[tuple[list[str], list[str]]]:
    """(user turns, assistant replies) per JSONL line: ``{"turns": [...], "replies": [...]}`` or ``messages``."""
    if not path.is_file():
        raise ConfigError(f"conversation file {path} does not exist")
    conversations = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not JSON: {exc}") from exc
        if isinstance(record, dict) and isinstance(record.get("turns"), list):
            turns = [str(turn) for turn in record["turns"]]
            replies = [str(reply) for reply in record.get("replies") or []]
        elif isinstance(record, dict) and isinstance(record.get("messages"), list):
            messages = [m for m in record["messages"] if isinstance(m, dict)]
            turns = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
            replies = [str(m.get("content", "")) for m in messages if m.get("role") == "assistant"]
        else:
            raise ConfigError(f"{path}:{number}: expected {{'turns': [...]}} or {{'messages': [...]}}")
        if not turns:
            raise ConfigError(f"{path}:{number}: a conversation without user turns")
        conversations.append((turns, replies))
    if not conversations:
        raise ConfigError(f"conversation file {path} holds no conversations")
    return conversations


def multi_turn_prompts(
    spec: MultiTurnPrompts,
    base_dir: Path,
    tokenizer: PreTrainedTokenizerBase | None,
    api: str,
    seed: int,
) -> list[Prompt]:
    """One prompt per (conversation, turn), ordered turn-major; turn k's prompt carries turns 1..k-1 and replies."""
    rng = random.Random(seed)
    if spec.path is not None:
        path = Path(spec.path)
        conversations = _conversations_from(path if path.is_absolute() else base_dir / path)
    else:
        if tokenizer is None or spec.input_tokens is None:
            raise ConfigError("synthetic conversations need the checkpoint's tokenizer (CLI: --tokenizer DIR)")
        conversations = []
        for _ in range(spec.conversations):
            lengths = sample_lengths(spec.input_tokens, spec.turns, rng)
            turns = [random_text(tokenizer, n, rng) for n in lengths]
            replies = [random_text(tokenizer, spec.reply_tokens, rng) for _ in range(spec.turns - 1)]
            conversations.append((turns, replies))
    prompts = []
    for turn in range(max(len(turns) for turns, _ in conversations)):
        for turns, replies in conversations:
            if turn >= len(turns):
                continue
            history: list[dict[str, Any]] = []
            for k in range(turn):
                history.append({"role": "user", "content": turns[k]})
                # A reply the file did not give is a short stand-in: the history must alternate.
                history.append({"role": "assistant", "content": replies[k] if k < len(replies) else "OK."})
            history.append({"role": "user", "content": turns[turn]})
            if api == "chat":
                prompts.append(Prompt(messages=tuple(history)))
            else:
                text = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in history) + "\nAssistant:"
                prompts.append(Prompt(text=text))
    return prompts


def scenario_prompts(
    scenario: Scenario,
    scenario_dir: Path,
    tokenizer: str | Path | PreTrainedTokenizerBase | None,
    *,
    source: str | None = None,
) -> list[Prompt]:
    """The prompts ``scenario`` asks for; synthetic prompts need ``tokenizer`` (a path or a loaded tokenizer).

    ``source`` names the scenario file in errors (default: ``<scenario_dir>/<name>.yaml`` when it exists).
    """
    spec = scenario.prompts
    if isinstance(spec, JsonlPrompts):
        return jsonl_prompts(spec, scenario_dir, scenario.api)
    if isinstance(spec, MultiTurnPrompts) and spec.path is not None:
        return multi_turn_prompts(spec, scenario_dir, None, scenario.api, scenario.seed)
    if tokenizer is None:
        raise ConfigError(
            f"scenario {scenario.name!r} uses synthetic prompts, which need the checkpoint's tokenizer: "
            "pass a tokenizer directory (CLI: --tokenizer DIR or --checkpoint DIR)"
        )
    loaded = load_tokenizer(tokenizer) if isinstance(tokenizer, str | Path) else tokenizer
    if isinstance(spec, MultiTurnPrompts):
        return multi_turn_prompts(spec, scenario_dir, loaded, scenario.api, scenario.seed)
    if isinstance(spec, RagPrompts):
        from evals.latency.rag import rag_prompts

        if source is None:
            files = [scenario_dir / f"{scenario.name}{suffix}" for suffix in (".yaml", ".yml")]
            source = str(next((f for f in files if f.is_file()), f"{scenario.name!r} (in {scenario_dir})"))
        return rag_prompts(scenario, loaded, source=source)
    count = spec.count or scenario.prompts_needed()
    if isinstance(spec, SharedPrefixPrompts):
        return shared_prefix_prompts(spec, loaded, scenario.api, scenario.seed, count)
    return synthetic_prompts(spec, loaded, scenario.seed, count)
