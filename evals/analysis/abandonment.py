"""SLO-effective accuracy under an abandonment threshold: an answer slower than the threshold is worth nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Abandonment:
    """``answered``: requests that finished within the threshold (failed ones never do), of ``n``;
    ``effective_accuracy`` = accuracy x answered / n (None without requests)."""

    n: int
    answered: int
    effective_accuracy: float | None

    @property
    def abandoned_share(self) -> float | None:
        return (self.n - self.answered) / self.n if self.n else None


def slo_effective_accuracy(accuracy: float, e2e_ms: Sequence[float | None], threshold_ms: float) -> Abandonment:
    """Headline ``accuracy`` discounted by abandonment: a request whose E2E exceeds ``threshold_ms`` (or that
    failed: ``None``) counts as an abandoned answer, so the share answered in time multiplies the accuracy.

    Assumes correctness does not depend on speed (the same answer, late, is lost, not wrong).
    """
    if not threshold_ms > 0:
        raise ValueError(f"the abandonment threshold must be > 0 ms, got {threshold_ms}")
    answered = sum(1 for value in e2e_ms if value is not None and value <= threshold_ms)
    n = len(e2e_ms)
    return Abandonment(n=n, answered=answered, effective_accuracy=accuracy * answered / n if n else None)
