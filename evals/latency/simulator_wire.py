"""What the simulator reads and writes on the wire: prompts, its answers to arithmetic questions, OpenAI's chunks
and usage."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

QUESTION = re.compile(r"What is (-?\d+) plus (-?\d+)\?")  # BIG-bench arithmetic, as the smoke suite asks it


def answer_question(prompt: str, accuracy: float, seed: int) -> tuple[str, str, bool] | None:
    """(question, answer, correct) for the last arithmetic question in ``prompt``; None if it asks none."""
    found = list(QUESTION.finditer(prompt))
    if not found:
        return None
    last = found[-1]
    left, right = int(last[1]), int(last[2])
    digest = hashlib.sha256(f"{seed}:{last[0]}".encode()).digest()
    correct = int.from_bytes(digest, "big") < accuracy * 2 ** (8 * len(digest))
    return last[0], str(left + right if correct else left + right + 1), correct


def prompt_text(body: dict[str, Any]) -> str:
    if isinstance(body.get("prompt"), str):
        return str(body["prompt"])
    messages = body.get("messages") or []
    return " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))


def prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt's token count as this server counts (and reports) it: its whitespace-separated words."""
    return len(prompt_text(body).split())


def chunk(chat: bool, model: str, text: str | None, finish: str | None) -> bytes:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {"content": text} if text is not None else {}
    else:
        choice["text"] = text or ""
    event = {
        "id": "sim",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "model": model,
        "choices": [choice],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    """OpenAI's ``usage`` object of a request answered with ``completion_tokens`` tokens."""
    prompt = prompt_tokens(body)
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}
