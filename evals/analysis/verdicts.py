"""Verdicts of a night: error control across the night's rows (weighted Benjamini-Hochberg) and the vocabulary.

Pure functions over estimates and p-values. A row is ``regression`` or ``improvement`` only when its
BH-adjusted p-value passes alpha AND the effect is practical; the rest say why they are not:

- ``equivalent``: the (1 − 2α) CI lies inside ± the practical margin (TOST): no change, for sure;
- ``noisy``: the series' night-to-night noise alone hides an effect of the practical size;
- ``no_change``: inconclusive (the row's MDE says what could have been seen);
- ``insufficient_data``: no SE or p-value (too few requests, pairs or nights; a metric without stderr);
- ``no_baseline``: nothing to compare with (decided by the caller).

The night's **primary** rows (each model's headline accuracy, its P95 TTFT at the reference level) may be given a
larger share of the night's alpha than the many per-task and per-level rows: weighted BH (Genovese, Roeder &
Wasserman 2006) tests p / w against the BH line; weights average 1 over the night's hypotheses, so the FDR stays
at most alpha (and, on a night where nothing changed, the chance of any false finding too: Σ w·alpha/m = alpha).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evals.analysis import power, stats

JUDGED = ("regression", "improvement")


def adjust(
    p_values: Sequence[float | None],
    families: Sequence[Hashable] | None = None,
    primary: Sequence[bool] | None = None,
    primary_share: float = 0.0,
) -> list[float | None]:
    """Weighted Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control`` of min(p / w, 1));
    None where p is None. Without primary rows (or with ``primary_share`` 0) this is plain BH.

    Rows with the same family (e.g. a cost row and the throughput row whose test it shares) are one hypothesis:
    counted once, with the family's first p-value, and all get its adjusted p; a family is primary when any of
    its rows is. Weights: see :func:`weights`.
    """
    from scipy.stats import false_discovery_control

    keys = list(families) if families is not None else list(range(len(p_values)))
    flags = list(primary) if primary is not None else [False] * len(keys)
    first: dict[Hashable, float] = {}
    for key, p in zip(keys, p_values, strict=True):
        if key not in first and p is not None and math.isfinite(p):
            first[key] = min(max(p, 0.0), 1.0)
    if not first:
        return [None] * len(p_values)
    primaries = {key for key, flag in zip(keys, flags, strict=True) if flag}
    w = weights([key in primaries for key in first], primary_share)
    scaled = [min(p / wi, 1.0) for p, wi in zip(first.values(), w, strict=True)]
    adjusted = dict(zip(first, (float(x) for x in false_discovery_control(scaled)), strict=True))
    return [
        adjusted.get(key) if p is not None and math.isfinite(p) else None for key, p in zip(keys, p_values, strict=True)
    ]


def weights(primary: Sequence[bool], share: float) -> list[float]:
    """Weighted-BH weights of a night's hypotheses: the primary ones together get ``share`` of the night's alpha
    (each ``share`` × m / m_primary), the others the rest; the weights average 1.

    A primary hypothesis never weighs less than 1 (plain BH): with ``share`` below the primaries' own share of the
    night, or a night of only primary or only other rows, every weight is 1.
    """
    m, m_primary = len(primary), sum(primary)
    if not 0.0 <= share < 1.0:
        raise ValueError(f"the primary rows' share of alpha must lie in [0, 1), got {share}")
    if m_primary == 0 or m_primary == m or share * m <= m_primary:
        return [1.0] * m
    heavy = share * m / m_primary
    light = (1.0 - share) * m / (m - m_primary)
    return [heavy if flag else light for flag in primary]


def decide(
    est: stats.Estimate, higher_is_better: bool, threshold: float, p_adjusted: float | None, alpha: float
) -> str:
    """The verdict of one estimate, given its adjusted p-value and the practical threshold (metric units)."""
    delta, se = est.delta, est.se
    if delta is None or se is None or p_adjusted is None or not (math.isfinite(delta) and math.isfinite(se)):
        return "insufficient_data"
    practical = math.isfinite(threshold) and abs(delta) >= threshold and delta != 0.0
    if p_adjusted <= alpha and practical:
        return "improvement" if (delta > 0) == higher_is_better else "regression"
    half = stats.quantile(1 - alpha, est.df) * se  # the (1 − 2α) CI: two one-sided tests at alpha
    if threshold > 0 and -threshold < delta - half and delta + half < threshold:
        return "equivalent"
    if est.night_se is not None and (power.mde(est.night_se, alpha) or 0.0) > threshold:
        return "noisy"
    return "no_change"


@dataclass(frozen=True)
class Judged:
    """One row to judge: its estimate, direction, practical threshold, the family of its hypothesis, and whether it
    is one of the night's primary rows (a headline accuracy, a reference-level P95 TTFT)."""

    est: stats.Estimate | None  # None: no baseline
    higher_is_better: bool = True
    threshold: float = math.inf
    family: Hashable = None
    primary: bool = False


def judge_night(rows: Sequence[Judged], alpha: float, primary_share: float = 0.0) -> list[tuple[str, float | None]]:
    """(verdict, adjusted p) of every row of a night, weighted BH across the night's distinct hypotheses, the
    primary rows sharing ``primary_share`` of alpha (0: plain BH)."""
    families = [row.family if row.family is not None else ("row", i) for i, row in enumerate(rows)]
    p_values = [row.est.p_value if row.est is not None and row.est.se is not None else None for row in rows]
    adjusted = adjust(p_values, families, [row.primary for row in rows], primary_share)
    return [
        ("no_baseline", None)
        if row.est is None
        else (decide(row.est, row.higher_is_better, row.threshold, p, alpha), p)
        for row, p in zip(rows, adjusted, strict=True)
    ]


@dataclass(frozen=True)
class NightSummary:
    """How a night's verdicts were reached: rows, distinct hypotheses tested, findings, expected false ones."""

    rows: int
    tested: int
    verdicts: dict[str, int]
    alpha: float

    @property
    def findings(self) -> int:
        return sum(self.verdicts.get(v, 0) for v in JUDGED)

    @property
    def expected_false(self) -> float:
        """BH bounds the expected share of false findings by alpha: at most alpha × findings are expected false."""
        return self.alpha * self.findings

    def text(self) -> str:
        counts = ", ".join(f"{n} {v}" for v, n in sorted(self.verdicts.items()))
        return (
            f"{self.rows} comparisons, {self.tested} tests (weighted Benjamini-Hochberg at {self.alpha:g}): "
            f"{counts or 'none'}; expected false findings <= {self.expected_false:.2f}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "tested": self.tested,
            "verdicts": dict(self.verdicts),
            "alpha": self.alpha,
            "expected_false_findings": round(self.expected_false, 3),
        }


def summarize(rows: Iterable[Mapping[str, Any]], alpha: float | None = None) -> NightSummary:
    """The summary of a night's ``comparisons`` rows (tested: distinct run pairs' hypotheses with an adjusted p)."""
    rows = list(rows)
    verdicts: dict[str, int] = {}
    tested: set[tuple[Any, ...]] = set()
    for row in rows:
        verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + 1
        if row.get("p_adjusted") is not None:
            tied = row.get("tested_with") or row["metric"]
            tested.add((row["run_id"], row.get("baseline_run_id"), row.get("kind"), tied))
    alphas = [row["alpha"] for row in rows if row.get("alpha") is not None]
    return NightSummary(
        len(rows), len(tested), verdicts, alpha if alpha is not None else (alphas[0] if alphas else 0.05)
    )
