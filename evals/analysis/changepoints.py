"""Change points across nights: Apache Otava's E-divisive on each model's nightly series, the change_points table.

Detector: Apache Otava (formerly Hunter, MongoDB's CI change detection). Otava's split step (E-divisive over sliding
windows, ``otava.analysis.split``: pure numpy/scipy over a list of floats) proposes candidate nights; our merge step
(:func:`detect`, the same bottom-up loop as ``otava.analysis.merge``) keeps a candidate only when

- its **significance** passes: Student's t between the segments on either side gives p < ``max_pvalue``, the t
  statistic shrunk by √((1−ρ)/(1+ρ)) where ρ is the lag-1 autocorrelation of the nights around their segment
  means (slow drift is not a change: an AR(1) series has far fewer independent nights than nights);
- its **magnitude** passes: for accuracy, an absolute difference of at least ``min_points`` (0.70 → 0.68 and
  0.37 → 0.35 are both 2 points); for latency and cost, at least ``noise_k`` × the series' robust night-to-night SD
  (1.4826 × the median absolute deviation of the nights from their segment's median) and ``min_relative`` of the
  level before;
- it is **not a blip**: every segment but the last spans at least 1 + ``confirm_nights`` nights, so a night that
  stands alone between two others is an outlier, not two changes.

A change is ``confirmed`` once at least ``confirm_nights`` nights after its first night exist and their mean lies
beyond the midpoint of the levels before and after (the new level persists); with fewer it is ``tentative``; a
change whose later nights went back to the old level is dropped (an outlier on the night it appeared).

Series per (model, suite, scenario), one value per night (its published run): headline accuracy; per load level
P95 TTFT, P95 E2E and output tokens/s; cost per 1M output tokens at the SLO (see :mod:`evals.analysis.measures`).
A change on a series whose revision did not move across the change is a **serving-stack change**; the row says
what differed in the runs' provenance (versions, hardware, backend, dtype, config hash).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


log = logging.getLogger(__name__)

METHOD = "otava-e-divisive"
PROVENANCE_FIELDS = ("versions", "hardware", "backend", "dtype", "config_hash", "suite_version", "scenario_version")
STATUSES = ("tentative", "confirmed")
SCALES = ("points", "noise")  # how a series' magnitude threshold is stated: absolute points, or x its noise
_MAD_TO_SD = 1.4826  # the MAD of a normal sample times this estimates its SD


@dataclass(frozen=True)
class ChangePointOptions:
    """Detector settings: Otava's window and significance, the magnitude thresholds, the confirmation rule."""

    window_len: int = 50
    max_pvalue: float = 0.001
    min_points: float = 0.01  # accuracy: the smallest change worth a row, in absolute points (0.01 = 1 point)
    noise_k: float = 1.0  # latency/cost: the smallest change, in robust night-to-night SDs of the series
    min_relative: float = 0.02  # latency/cost: and at least this share of the level before
    confirm_nights: int = 2  # nights after a change's first night that must show the new level
    tail_nights: int = 10  # the latest nights scanned for a change the split step has too few nights to propose
    tail_pvalue: float = 0.005  # significance of a change among the latest nights (it must then persist)
    confirm_pvalue: float = 0.005  # significance of a change 1 + confirm_nights .. confirm_window nights old
    confirm_window: int = 5  # the latest nights in which a sustained step is tested at confirm_pvalue
    clip_sd: float = 2.5  # nights beyond this many robust SDs of their segment's median are tested as if that far
    min_nights: int = 6  # a shorter series cannot show a significant split


@dataclass(frozen=True)
class Change:
    """A change point of one series: ``index`` is the first night after the change."""

    index: int
    n_before: int
    n_after: int
    mean_before: float
    mean_after: float
    p_value: float
    noise_sd: float  # the series' robust night-to-night SD around its segments' medians
    status: str  # tentative | confirmed

    @property
    def relative_change(self) -> float | None:
        return self.mean_after / self.mean_before - 1.0 if self.mean_before != 0 else None

    @property
    def confirmed(self) -> bool:
        return self.status == "confirmed"


def scale_of(series: str) -> str:
    """How a series' changes are judged: accuracy in absolute points, latency and cost against their noise."""
    return "points" if series.startswith("accuracy:") else "noise"


def detect(values: Sequence[float], options: ChangePointOptions | None = None, *, scale: str = "noise") -> list[Change]:
    """Change points of one series (nights in order), each ``tentative`` or ``confirmed``. Pure: floats in.

    ``scale`` is ``points`` (accuracy: ``min_points`` absolute) or ``noise`` (latency, cost: ``noise_k`` robust SDs).
    """
    import numpy as np
    from otava.analysis import split

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    options = options or ChangePointOptions()
    x = np.asarray([float(v) for v in values], dtype=float)
    if len(x) < options.min_nights:
        return []
    first_pass = min(options.max_pvalue * 10, 0.5)  # Otava's own relaxation for its split step
    indices = sorted({int(p.index) for p in split(list(x), options.window_len, first_pass)})
    while True:
        judged = _judge(x, indices, options, scale)
        failing = [j for j in judged if not j.passes]
        if not failing:
            break
        indices.remove(max(failing, key=lambda j: j.weakness).change.index)  # Otava's merge: weakest first, re-judge
    judged += _tail(x, indices, options, scale)
    statuses = [(j.change, _status(j, options)) for j in judged]
    return [replace(change, status=status) for change, status in statuses if status is not None]


@dataclass(frozen=True)
class _Judged:
    change: Change  # its status still to be decided
    blip: bool
    score: float  # magnitude / threshold: >= 1 passes
    passes: bool
    robust: np.ndarray  # the series winsorized around its segments (what the tests saw)

    @property
    def weakness(self) -> tuple[int, float, float]:
        """Blips go first, then the least significant, then the smallest (Otava's order)."""
        return (int(self.blip), self.change.p_value, -self.score)


def _judge(x: np.ndarray, indices: list[int], options: ChangePointOptions, scale: str) -> list[_Judged]:
    import numpy as np

    bounds = [0, *indices, len(x)]
    noise, rho = segment_noise(x, bounds)
    # Nights farther than ``clip_sd`` robust SDs from their segment's median count as that far (winsorized): one
    # outlier can then neither make a change significant nor large.
    robust = np.concatenate([_clip(x[a:b], noise * options.clip_sd) for a, b in itertools.pairwise(bounds)])
    out = []
    for i, index in enumerate(indices):
        left, right = robust[bounds[i] : index], robust[index : bounds[i + 2]]
        last = bounds[i + 2] == len(x)
        short = 1 + options.confirm_nights
        blip = len(left) < short or (not last and len(right) < short)
        p = t_test_p(left, right, rho)
        score = magnitude_score(float(left.mean()), float(right.mean()), noise, options, scale)
        passes = not blip and p < options.max_pvalue and score >= 1.0
        raw_before, raw_after = float(x[bounds[i] : index].mean()), float(x[index : bounds[i + 2]].mean())
        change = Change(index, len(left), len(right), raw_before, raw_after, p, noise, "tentative")
        out.append(_Judged(change, blip, score, passes, robust))
    return out


def _clip(segment: np.ndarray, width: float) -> np.ndarray:
    import numpy as np

    if width <= 0 or len(segment) == 0:
        return segment
    centre = float(np.median(segment))
    return np.clip(segment, centre - width, centre + width)


def _tail(x: np.ndarray, indices: list[int], options: ChangePointOptions, scale: str) -> list[_Judged]:
    """The strongest change among the latest ``tail_nights`` nights, when the split step kept none there: the last
    m nights against the segment before them (E-divisive needs more nights after a change than a night has)."""
    import numpy as np

    start = indices[-1] if indices else 0
    if indices and start >= len(x) - options.tail_nights:
        return []
    best: _Judged | None = None
    for m in range(1, options.tail_nights + 1):
        index = len(x) - m
        if index - start < max(options.min_nights, 1 + options.confirm_nights):
            break
        confirmable = 1 + options.confirm_nights <= m <= options.confirm_window  # old enough to be confirmed
        level = options.confirm_pvalue if confirmable else options.tail_pvalue
        (judged,) = _judge(x[start:], [index - start], replace(options, max_pvalue=level), scale)
        if judged.passes and (best is None or judged.change.p_value < best.change.p_value):
            change = replace(judged.change, index=index)
            best = replace(judged, change=change, robust=np.concatenate([x[:start], judged.robust]))
    return [best] if best is not None else []


def _status(judged: _Judged, options: ChangePointOptions) -> str | None:
    """``tentative`` while fewer than ``confirm_nights`` nights follow the change's first; then ``confirmed`` when the
    latest ``confirm_nights`` nights of its segment still show the new level (their winsorized mean lies beyond the
    midpoint of the levels before and after), else None: the series went back, the change was an outlier."""
    x, change = judged.robust, judged.change
    if change.n_after < 1 + options.confirm_nights:
        return "tentative"
    end = change.index + change.n_after
    before = float(x[change.index - change.n_before : change.index].mean())
    after = float(x[change.index : end].mean())
    latest = float(x[end - options.confirm_nights : end].mean())
    return "confirmed" if (latest - (before + after) / 2) * (after - before) > 0 else None


def segment_noise(x: np.ndarray, bounds: Sequence[int]) -> tuple[float, float]:
    """(robust night-to-night SD, lag-1 autocorrelation) of a series around its segments (``bounds`` = cut indices
    including 0 and len): the SD is 1.4826 × the median absolute deviation from each segment's median; the
    autocorrelation is that of the deviations from each segment's mean, pairs within a segment only."""
    import numpy as np

    deviations, products, squares = [], 0.0, 0.0
    for start, stop in itertools.pairwise(bounds):
        segment = x[start:stop]
        if len(segment) == 0:
            continue
        deviations.append(np.abs(segment - np.median(segment)))
        centred = segment - segment.mean()
        products += float(np.sum(centred[1:] * centred[:-1]))
        squares += float(np.sum(centred**2))
    sd = _MAD_TO_SD * float(np.median(np.concatenate(deviations))) if deviations else 0.0
    rho = products / squares if squares > 0 else 0.0
    return sd, min(max(rho, 0.0), 0.95)


def t_test_p(left: np.ndarray, right: np.ndarray, rho: float = 0.0) -> float:
    """Two-sided p of Student's t between two segments (pooled variance, as Otava's tester), its statistic shrunk
    by √((1−ρ)/(1+ρ)) for serially correlated nights (an AR(1) series' effective sample size)."""
    from scipy import stats

    n1, n2 = len(left), len(right)
    if n1 + n2 <= 2:
        return 1.0
    dof = n1 + n2 - 2
    pooled = (n1 * float(left.var()) + n2 * float(right.var())) / dof
    se = math.sqrt(pooled * (1 / n1 + 1 / n2))
    diff = float(right.mean()) - float(left.mean())
    if se == 0:
        return 0.0 if diff != 0 else 1.0
    t = abs(diff) / se * math.sqrt((1 - rho) / (1 + rho))
    return float(2 * stats.t.sf(t, dof))


def magnitude_score(before: float, after: float, noise_sd: float, options: ChangePointOptions, scale: str) -> float:
    """|after − before| over the threshold of the series' scale (>= 1: large enough to be a change)."""
    diff = abs(after - before)
    if scale == "points":
        threshold = options.min_points
    else:
        threshold = max(options.noise_k * noise_sd, options.min_relative * abs(before))
    return diff / threshold if threshold > 0 else math.inf
