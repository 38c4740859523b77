"""RAG-shaped load: the prompt-length sweep's lengths within the context window, its prompts, its SLO crossing."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evals.errors import ConfigError
from evals.latency.prompts import Prompt, random_text
from evals.latency.scenario import RagPrompts, Scenario

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# Room kept for the words around the context and question ("Context:", "Question:", "Answer:") and a chat template.
TEMPLATE_TOKENS = 64
# config.json keys that hold a checkpoint's context window, in order of preference.
_WINDOW_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
_NO_LIMIT = 1_000_000_000  # transformers' model_max_length when a tokenizer does not know its model's window


def _spec(scenario: Scenario) -> RagPrompts:
    if not isinstance(scenario.prompts, RagPrompts):
        raise TypeError(f"scenario {scenario.name!r} is not a prompt-length sweep (prompts.source: rag)")
    return scenario.prompts


def swept_lengths(scenario: Scenario, window: int, origin: str, *, source: str) -> list[int]:
    """The context lengths ``scenario`` sweeps in a ``window``-token context window (``origin`` says whence).

    A length whose prompt does not fit (context + question + ``output.max_tokens`` + :data:`TEMPLATE_TOKENS`) is a
    :class:`ConfigError` naming the scenario file and the field, unless ``prompts.cap``: then the lengths that
    fit are kept and the sweep ends with the longest context that fits.
    """
    spec = _spec(scenario)
    room = window - spec.question_tokens - scenario.output.max_tokens - TEMPLATE_TOKENS
    fitting = [n for n in spec.context_tokens if n <= room]
    if len(fitting) == len(spec.context_tokens):
        return fitting
    first = len(fitting)
    too_long = spec.context_tokens[first]
    if not spec.cap:
        raise ConfigError(
            f"scenario {source}: prompts.context_tokens[{first}]: {too_long} context + {spec.question_tokens} "
            f"question + {scenario.output.max_tokens} output (output.max_tokens) + {TEMPLATE_TOKENS} template tokens "
            f"exceed the model's context window of {window} tokens ({origin}); the longest context that fits is "
            f"{max(room, 0)} tokens: shorten the sweep, or set prompts.cap: true to sweep only the lengths that fit"
        )
    if room > (fitting[-1] if fitting else 0):
        fitting.append(room)
    if not fitting:
        raise ConfigError(
            f"scenario {source}: prompts.context_tokens: no context fits the model's context window of {window} "
            f"tokens ({origin}) beside {spec.question_tokens} question and {scenario.output.max_tokens} output tokens"
        )
    log.warning(
        "scenario %s: context lengths %s capped at the context window of %d tokens (%s): sweeping %s",
        source, spec.context_tokens[first:], window, origin, fitting,
    )  # fmt: skip
    return fitting


def context_window(tokenizer: PreTrainedTokenizerBase) -> tuple[int, str] | None:
    """The checkpoint's context window and where it was read: its config.json, else the tokenizer's limit."""
    folder = Path(str(getattr(tokenizer, "name_or_path", "") or ""))
    config = folder / "config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        data = {**data.get("text_config", {}), **data} if isinstance(data, dict) else {}
        for key in _WINDOW_KEYS:
            if isinstance(data.get(key), int) and data[key] > 0:
                return int(data[key]), f"{key} in {config}"
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _NO_LIMIT:
        return limit, f"the tokenizer's model_max_length ({folder})"
    return None


def rag_prompts(
    scenario: Scenario, tokenizer: PreTrainedTokenizerBase, *, source: str, count: int | None = None
) -> list[Prompt]:
    """The sweep's prompts, shortest context first: per swept length ``count`` prompts (default: one per request
    the scenario sends) of a distinct random context and question, each tagged with its length."""
    spec = _spec(scenario)
    if spec.context_window is not None:
        window, origin = spec.context_window, "prompts.context_window"
    else:
        found = context_window(tokenizer)
        if found is None:
            raise ConfigError(
                f"scenario {source}: prompts.context_window: the checkpoint states no context window (no "
                f"{'/'.join(_WINDOW_KEYS)} in config.json, no tokenizer limit); set it in the scenario"
            )
        window, origin = found
    rng = random.Random(scenario.seed)
    per_length = count or spec.count or scenario.prompts_needed()
    prompts = []
    for length in swept_lengths(scenario, window, origin, source=source):
        for _ in range(per_length):
            context, question = random_text(tokenizer, length, rng), random_text(tokenizer, spec.question_tokens, rng)
            text = f"Context:\n{context}\n\nQuestion:{question}\nAnswer:"
            tokens = len(tokenizer.encode(text, add_special_tokens=False))
            if scenario.api == "chat":
                messages = (
                    {"role": "system", "content": "Answer the question from the context."},
                    {"role": "user", "content": f"Context:\n{context}\n\nQuestion:{question}"},
                )
                prompts.append(Prompt(messages=messages, tokens=tokens, context_tokens=length))
            else:
                prompts.append(Prompt(text=text, tokens=tokens, context_tokens=length))
    return prompts


def by_length(prompts: Sequence[Prompt]) -> dict[int | None, list[Prompt]]:
    """Prompts grouped by their sweep step, shortest first (one group ``None`` for a scenario without a sweep)."""
    groups: dict[int | None, list[Prompt]] = {}
    for prompt in prompts:
        groups.setdefault(prompt.context_tokens, []).append(prompt)
    return dict(sorted(groups.items(), key=lambda kv: -1 if kv[0] is None else kv[0]))


@dataclass(frozen=True)
class SloCrossing:
    """Where P95 TTFT first goes above the SLO along the input lengths.

    ``below``: the longest measured length before the crossing still within the SLO (None: the shortest is
    already over); ``above``: the first measured length over it (None: every length is within); ``length``: the
    crossing, linearly interpolated between them (None unless both are measured).
    """

    length: float | None
    below: float | None
    above: float | None


def slo_crossing(lengths: Sequence[float], p95_ms: Sequence[float | None], limit_ms: float) -> SloCrossing:
    """The input length at which P95 TTFT crosses ``limit_ms`` (pure; points in any order, missing P95s skipped)."""
    points = sorted((x, y) for x, y in zip(lengths, p95_ms, strict=True) if y is not None)
    below: tuple[float, float] | None = None
    for x, y in points:
        if y > limit_ms:
            if below is None:
                return SloCrossing(length=None, below=None, above=x)
            x0, y0 = below
            return SloCrossing(length=x0 + (limit_ms - y0) * (x - x0) / (y - y0), below=x0, above=x)
        below = (x, y)
    return SloCrossing(length=None, below=below[0] if below else None, above=None)
