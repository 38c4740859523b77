"""How predictable a level's service was: tail ratios, ITL jitter, error and timeout rates with Wilson CIs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from evals.latency.client import TIMEOUT_PREFIX

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def tail_ratio(values: Sequence[float], high: float = 99.0, low: float = 50.0) -> float | None:
    """P``high`` / P``low`` of ``values`` (1 = every request alike); None without values or with a P``low`` of 0."""
    if not values:
        return None
    base = percentile(values, low)
    return percentile(values, high) / base if base > 0 else None


def jitter(values: Sequence[float], high: float = 99.0, low: float = 50.0) -> float | None:
    """P``high`` - P``low`` of ``values`` (ITL jitter in ms: how much later than usual a slow token comes)."""
    if not values:
        return None
    return percentile(values, high) - percentile(values, low)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval of a binomial proportion ``successes / n`` (95 % by default); (None, None) for n = 0.

    Unlike the normal (Wald) interval it stays inside [0, 1] and is not empty at 0 or n successes: 0 errors in 64
    requests gives [0, 0.057], not [0, 0].
    """
    if n <= 0:
        return None, None
    if not 0 <= successes <= n:
        raise ValueError(f"successes ({successes}) must lie within 0..n ({n})")
    share = successes / n
    denominator = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    # Clamp float noise at the ends (0 successes must give exactly 0 as the lower bound).
    return max(0.0, centre - half) if successes else 0.0, min(1.0, centre + half) if successes < n else 1.0


def is_timeout(error: str | None) -> bool:
    """Whether a failed request ran past the client's per-request limit (not an HTTP error, drop or bad stream)."""
    return error is not None and error.startswith(TIMEOUT_PREFIX)


def rate_columns(name: str, count: int, n: int) -> dict[str, float | None]:
    """``{name}_rate`` = count / n and its Wilson 95 % CI as ``{name}_rate_ci_low`` / ``_ci_high`` (None for n = 0)."""
    low, high = wilson_interval(count, n)
    return {f"{name}_rate": count / n if n else None, f"{name}_rate_ci_low": low, f"{name}_rate_ci_high": high}


def predictability_columns(
    *, ttft_ms: Sequence[float], e2e_ms: Sequence[float], itl_ms: Sequence[float], errors: Sequence[str | None]
) -> dict[str, Any]:
    """A level's predictability columns of the ``latency`` table.

    ``ttft_ms``/``e2e_ms``/``itl_ms``: the successful requests' values (every gap of every request for ITL);
    ``errors``: one entry per request sent (None for a success). Timeouts count in ``timeout_rate`` only, every
    other failure in ``error_rate``: their sum is n_failed / n_requests.
    """
    n = len(errors)
    timeouts = sum(is_timeout(e) for e in errors)
    others = sum(e is not None for e in errors) - timeouts
    return {
        "ttft_tail_ratio": tail_ratio(ttft_ms),
        "e2e_tail_ratio": tail_ratio(e2e_ms),
        "itl_jitter_ms": jitter(itl_ms),
        "n_timeouts": timeouts,
        **rate_columns("error", others, n),
        **rate_columns("timeout", timeouts, n),
    }
