"""The charts of the report and the Results page: Plotly figures built from figure_data records (one module).

Every trace of a model is named by its full model id and carries ``meta = {"role": ...}`` (``model``, ``band``,
``frontier``, ``slo``, ``change_point``) so a reader of the page's figure data can find it; every point's hover says
model, revision, night, value and its 95 % CI. Quantities that cannot be negative start their axis at zero.
"""

from evals.report.figures.common import (
    CONFIG,
    PALETTE,
    TREND_METRICS,
    ci_text,
    colours,
    pareto_frontier,
)
from evals.report.figures.history import series_metric, trend, verdicts
from evals.report.figures.input_length import ttft_vs_input_length
from evals.report.figures.snapshot import cdf, latency_vs_load, pareto

__all__ = [
    "CONFIG",
    "PALETTE",
    "TREND_METRICS",
    "cdf",
    "ci_text",
    "colours",
    "latency_vs_load",
    "pareto",
    "pareto_frontier",
    "series_metric",
    "trend",
    "ttft_vs_input_length",
    "verdicts",
]
