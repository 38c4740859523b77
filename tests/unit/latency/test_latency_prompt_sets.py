"""Shared-prefix prompts and multi-turn conversations: structure, order, seeds, and the shipped JSONL example."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from evals.errors import ConfigError
from evals.latency.prompt_sets import multi_turn_prompts, shared_prefix_prompts
from evals.latency.prompts import load_tokenizer
from evals.latency.scenario import MultiTurnPrompts, SharedPrefixPrompts


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    return load_tokenizer(tiny_model_dir)


def test_shared_prefix_prompts_share_exactly_their_prefix(tokenizer) -> None:  # type: ignore[no-untyped-def]
    spec = SharedPrefixPrompts(source="shared_prefix", prefix_tokens=100, prefixes=2, input_tokens=10)
    prompts = shared_prefix_prompts(spec, tokenizer, "chat", seed=3, count=6)
    systems = [p.messages[0]["content"] for p in prompts]  # type: ignore[index]
    questions = [p.messages[1]["content"] for p in prompts]  # type: ignore[index]
    assert systems[0::2] == [systems[0]] * 3 and systems[1::2] == [systems[1]] * 3 and systems[0] != systems[1]
    assert len(tokenizer.encode(systems[0], add_special_tokens=False)) == 100
    assert len(set(questions)) == 6
    assert all(p.tokens == 110 for p in prompts)
    assert shared_prefix_prompts(spec, tokenizer, "chat", seed=3, count=6) == prompts
    text = shared_prefix_prompts(spec, tokenizer, "completions", seed=3, count=2)
    assert text[0].text is not None and text[0].text.startswith(systems[0])


def test_synthetic_conversations_grow_turn_by_turn(tokenizer) -> None:  # type: ignore[no-untyped-def]
    spec = MultiTurnPrompts(source="multi_turn", conversations=3, turns=3, input_tokens=8, reply_tokens=5)
    prompts = multi_turn_prompts(spec, Path("."), tokenizer, "chat", seed=1)
    assert len(prompts) == 9
    # Turn-major: 3 first turns, then 3 second turns (each holding its first turn and a reply), then third turns.
    assert [len(p.messages or ()) for p in prompts] == [1, 1, 1, 3, 3, 3, 5, 5, 5]
    for conversation in range(3):
        first, second, third = (prompts[turn * 3 + conversation].messages or () for turn in range(3))
        assert second[0] == first[0] and third[:3] == second
        assert [m["role"] for m in third] == ["user", "assistant", "user", "assistant", "user"]


def test_the_shipped_conversation_file_reads_in_both_formats() -> None:
    folder = Path(str(resources.files("evals") / "scenarios"))
    spec = MultiTurnPrompts(source="multi_turn", path="conversations.example.jsonl")
    prompts = multi_turn_prompts(spec, folder, None, "completions", seed=0)
    # Conversation 1 has 3 turns, conversation 2 has 2: 2 first turns, 2 second turns, 1 third turn.
    assert len(prompts) == 5
    last = prompts[-1].text or ""
    assert last.startswith("User: What is a KV cache?\nAssistant: It stores") and last.endswith("\nAssistant:")
    assert "How does prefix caching help a chat?" in last


def test_conversations_need_a_file_or_lengths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="input_tokens"):
        MultiTurnPrompts(source="multi_turn")
    (tmp_path / "bad.jsonl").write_text('{"nothing": 1}\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:1"):
        multi_turn_prompts(MultiTurnPrompts(source="multi_turn", path="bad.jsonl"), tmp_path, None, "chat", 0)
