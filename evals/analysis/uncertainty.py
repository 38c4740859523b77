"""Uncertainty on the leaderboard: bootstrap draws of each model's ranked value, rank intervals, and whether a
capacity held (a Wilson CI on goodput). Pure functions over lists and arrays; the reads live in
:mod:`evals.analysis.ranking`.

- **Rank interval**: each model's ranked value is drawn ``DRAWS`` times (seeded) — headline accuracy from a
  bootstrap over its questions (``accuracy_samples``), else a normal draw from its SE; goodput at the capacity level
  from a binomial over its requests — and the models of a board are ranked within each draw; ``rank_low`` /
  ``rank_high`` are the 2.5 % and 97.5 % points of a model's rank. Two models whose CIs overlap share ranks.
- **Capacity status** (as GuideLLM): ``held`` when the Wilson 95 % CI of goodput at the capacity level lies above
  the floor; ``indeterminate`` when a CI straddles the floor (at the capacity level, or at any level when no level's
  goodput reached it); ``none`` when every level's CI lies below the floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from evals.latency.predictability import wilson_interval

if TYPE_CHECKING:
    import numpy as np

DRAWS = 400  # resamples: enough for the 2.5 % / 97.5 % points of a rank, cheap on a laptop
SEED = 20261203
CAPACITY_STATUSES = ("held", "indeterminate", "none")


def goodput_interval(goodput: float | None, n_requests: int | None) -> tuple[float | None, float | None]:
    """Wilson 95 % CI of a level's goodput (the share of its requests that met the SLO)."""
    if goodput is None or not n_requests:
        return None, None
    return wilson_interval(round(goodput * n_requests), int(n_requests))


def capacity_status(levels: Sequence[tuple[float | None, int | None]], at_capacity: int | None, floor: float) -> str:
    """``held`` | ``indeterminate`` | ``none`` for one run's levels of the capacity's load type.

    ``levels``: (goodput, n_requests) per level; ``at_capacity``: the index of the capacity level in ``levels``
    (the highest whose goodput reached ``floor``), None when no level's did.
    """
    if at_capacity is not None:
        low, _ = goodput_interval(*levels[at_capacity])
        return "held" if low is None or low >= floor else "indeterminate"
    straddles = any((high := goodput_interval(g, n)[1]) is not None and high >= floor for g, n in levels)
    return "indeterminate" if straddles else "none"


def mean_draws(values: Sequence[float], draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """``draws`` bootstrap means of ``values`` (resampled with replacement; vectorised)."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        raise ValueError("no values to resample")
    rng = np.random.default_rng(seed)
    return x[rng.integers(0, len(x), size=(draws, len(x)))].mean(axis=1)


def headline_draws(
    tasks: Sequence[tuple[float, float | None, Sequence[float] | None]], draws: int = DRAWS, seed: int = SEED
) -> np.ndarray:
    """Draws of a headline accuracy (the mean over top-level tasks): per task (value, SE, per-question scores or
    None), its questions resampled where present, else value + SE × N(0, 1), else the value itself."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.zeros(draws)
    for k, (value, se, scores) in enumerate(tasks):
        if scores:
            out += mean_draws(scores, draws, seed + 1 + k)
        elif se:
            out += value + se * rng.standard_normal(draws)
        else:
            out += value
    return out / max(len(tasks), 1)


def share_draws(share: float, n: int, draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """Draws of a proportion from ``n`` trials (a bootstrap over requests of a binomial share: goodput)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.binomial(n, min(max(share, 0.0), 1.0), size=draws) / n


def rank_intervals(
    draws: Sequence[np.ndarray | None], *, descending: bool = True, level: float = 0.95
) -> list[tuple[int | None, int | None]]:
    """Per model, the ``level`` interval of its rank among the models of one board, ranked in every draw.

    ``draws[i]``: model i's draws of the ranked value (all the same length), None when it has no value (unranked:
    ranks go to the models with values, as :func:`evals.analysis.ranking.rank` does). A tie shares the best rank.
    """
    import numpy as np

    present = [i for i, d in enumerate(draws) if d is not None]
    out: list[tuple[int | None, int | None]] = [(None, None)] * len(draws)
    if not present:
        return out
    matrix = np.vstack([np.asarray(draws[i], dtype=float) for i in present])  # models x draws
    if descending:
        matrix = -matrix
    # rank = 1 + number of models strictly better in that draw
    ranks = 1 + (matrix[None, :, :] < matrix[:, None, :]).sum(axis=1)
    tail = (1 - level) / 2
    lows = np.quantile(ranks, tail, axis=1, method="inverted_cdf")
    highs = np.quantile(ranks, 1 - tail, axis=1, method="inverted_cdf")
    for row, i in enumerate(present):
        out[i] = (int(lows[row]), int(highs[row]))
    return out
