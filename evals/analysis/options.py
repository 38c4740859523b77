"""How runs are compared (alpha, minimum practical effects, bootstrap), and the shape of one compared metric."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evals.analysis import stats

if TYPE_CHECKING:
    from evals.settings import Settings

Compared = tuple[str, stats.Estimate, bool, float]  # metric, estimate, higher_is_better, threshold (metric units)


@dataclass(frozen=True)
class CompareOptions:
    """How runs are compared; defaults come from the ``compare_*`` settings."""

    baselines: tuple[str, ...] = ()
    alpha: float = 0.05
    min_effect_accuracy_points: float = 1.0  # absolute, in percentage points of a [0, 1] metric
    min_effect_latency: float = 0.05  # relative to the baseline value
    min_effect_cost: float = 0.05  # relative to the baseline value
    resamples: int = 2000
    seed: int = 0
    min_pairs: int = 30  # matched questions before a comparison is called paired
    night_cv: float = 0.10  # night-to-night CV of a latency/cost series while its history is short
    night_min_history: int = 5  # re-measurements of unchanged revisions needed to estimate that CV
    night_history: int = 14  # nights of the baseline revision averaged into a latency/cost baseline
    primary_alpha_share: float = 0.5  # share of a night's alpha for its primary rows (weighted BH; 0: plain BH)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> CompareOptions:
        options = cls(
            baselines=tuple(settings.compare_baselines),
            alpha=settings.compare_alpha,
            min_effect_accuracy_points=settings.compare_min_effect_accuracy_points,
            min_effect_latency=settings.compare_min_effect_latency,
            min_effect_cost=settings.compare_min_effect_cost,
            resamples=settings.compare_bootstrap_resamples,
            seed=settings.compare_seed,
            min_pairs=settings.compare_min_pairs,
            night_cv=settings.compare_night_cv,
            night_min_history=settings.compare_night_min_history,
            night_history=settings.compare_night_history,
            primary_alpha_share=settings.compare_primary_alpha_share,
        )
        given: dict[str, Any] = {
            k: (tuple(v) if k == "baselines" else v) for k, v in overrides.items() if v is not None
        }
        return dataclasses.replace(options, **given)
