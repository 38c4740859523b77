"""lm-eval ``process_results`` hooks of the refusal tasks: the rule-based classifier in evals.accuracy.refusal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def harmful(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, int]:
    from evals.accuracy.refusal import score_harmful

    return score_harmful(doc, results)


def benign(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, int]:
    from evals.accuracy.refusal import score_benign

    return score_benign(doc, results)
