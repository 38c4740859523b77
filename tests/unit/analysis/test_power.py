"""The minimum detectable effect against the power a test actually has there (scipy's noncentral t)."""

from __future__ import annotations

import pytest
from scipy.stats import nct, norm, t

from evals.analysis import power


def _t_power(effect_in_se: float, df: float, alpha: float = 0.05) -> float:
    """Exact power of a two-sided t test at ``df`` for a true effect of ``effect_in_se`` standard errors."""
    q = t.ppf(1 - alpha / 2, df)
    return float(nct.sf(q, df, effect_in_se) + nct.cdf(-q, df, effect_in_se))


def test_without_df_the_mde_is_the_normal_one() -> None:
    se = 0.7
    expected = (norm.ppf(0.975) + norm.ppf(0.8)) * se
    assert power.mde(se, 0.05) == pytest.approx(expected)
    assert power.mde(se, 0.05, df=None) == pytest.approx(expected)


@pytest.mark.parametrize("df", [3, 4, 6, 10, 30])
def test_with_df_a_t_test_detects_the_mde_with_about_the_stated_power(df: int) -> None:
    assert _t_power(power.mde(1.0, 0.05, df=df) or 0.0, df) == pytest.approx(0.8, abs=0.025)


@pytest.mark.parametrize("df", [3, 4, 6])
def test_normal_quantiles_would_overstate_a_small_df_test_s_power(df: int) -> None:
    # The reason the df is passed: at the normal MDE a t test on a few trials detects the effect far less often.
    assert _t_power(power.mde(1.0, 0.05) or 0.0, df) < 0.66


def test_no_mde_without_a_usable_standard_error() -> None:
    assert power.mde(None, 0.05) is None
    assert power.mde(float("nan"), 0.05, df=4) is None
    assert power.mde(-1.0, 0.05) is None
