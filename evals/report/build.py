"""The comparison report: one self-contained HTML file (Plotly figures, plotly.js inline, no network)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.warehouse import Warehouse
    from evals.warehouse.views import ReadModel

log = logging.getLogger(__name__)


def build_report(
    warehouse: Warehouse | None = None,
    out_path: str | Path = "report.html",
    *,
    publish: bool = False,
    max_models: int = 12,
) -> Path:
    """Write the report to ``out_path``; with ``publish`` also replace the warehouse's published report."""
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    warehouse = warehouse or Warehouse.from_settings()
    con = connect(warehouse)
    try:
        data = report_data(con, min_goodput=warehouse.settings.leaderboard_min_goodput, max_models=max_models)
    finally:
        con.close()
    data["warehouse"] = warehouse.uri
    data["discovery"] = warehouse.latest_discovery()
    html = render(data).encode()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(html)
    if publish:
        warehouse.publish_report(html)
    log.info("report written to %s (%d bytes)", out, len(html))
    return out


def publish_report(warehouse: Warehouse, *, out_path: str | Path | None = None) -> str:
    """Rebuild the report and replace the published one; returns its URI (a copy stays at ``out_path`` if given)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="evals-report-") as tmp:
        build_report(warehouse, out_path or Path(tmp) / "report.html", publish=True)
    return warehouse.report_uri


def report_data(con: ReadModel, *, min_goodput: float, max_models: int = 12) -> dict[str, Any]:
    """Everything the report draws, JSON-safe (it is also embedded in the page as ``#report-data``)."""
    from evals.report.sections import collect

    return collect(con, min_goodput=min_goodput, max_models=max_models)


def render(data: Mapping[str, Any]) -> str:
    """The HTML page of :func:`report_data`'s output, with plotly.js and the page script inline."""
    from evals.report.sections import STYLE, asset, figure_sections, json_for_script

    omitted = data.get("models_omitted") or 0
    header = (
        "<h1>checkpoint-evals report</h1>"
        f'<p class="meta">Warehouse {escape(str(data.get("warehouse", "")))} · generated '
        f"{escape(data['generated_at'])} · {len({r['model_id'] for r in data['leaderboard']})} model(s)"
        + (f" · figures show the first {len(data['models'])} ({omitted} more in the table)" if omitted else "")
        + "</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>checkpoint-evals report</title>'
        f"<style>{STYLE}</style></head><body>{header}{''.join(figure_sections(data))}"
        f'<script type="application/json" id="report-data">{json_for_script(data)}</script>'
        f"<script>{asset('plotly.min.js')}</script><script>{asset('figures.js')}</script></body></html>\n"
    )
