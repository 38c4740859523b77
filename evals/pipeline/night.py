"""The analytics step of a night: compare the published runs, refresh the report, then apply the policy."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.report.notify import Notifier
    from evals.warehouse import Warehouse

log = logging.getLogger(__name__)


def compare_and_report(
    run_ids: Iterable[str],
    *,
    warehouse: Warehouse | None = None,
    report_path: str | Path | None = None,
    publish: bool = True,
    notifier: Notifier | None = None,
) -> dict[str, Any]:
    """Compare and store every run, write the report (and ``_reports/report.html``), notify, then enforce.

    The report and the comparisons are written before :class:`~evals.report.notify.RegressionDetected` can
    be raised (``EVALS_FAIL_ON_REGRESSION``), so a failed task still leaves everything to look at.
    Returns a small JSON-safe summary (fit for XCom).
    """

    from evals.analysis.compare import compare_night
    from evals.report.build import build_report, publish_report
    from evals.report.notify import apply_policy
    from evals.warehouse import Warehouse

    warehouse = warehouse or Warehouse.from_settings()
    rows = compare_night(list(run_ids), warehouse=warehouse)
    if publish:
        report = publish_report(warehouse, out_path=report_path)
    elif report_path is not None:
        report = str(build_report(warehouse, report_path))
    else:
        report = "(not written)"
    verdicts: dict[str, int] = {}
    for row in rows:
        verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + 1
    summary: dict[str, Any] = {
        "runs": sorted({row["run_id"] for row in rows}),
        "comparisons": len(rows),
        "verdicts": verdicts,
        "report": report,
    }
    found = apply_policy(rows, settings=warehouse.settings, notifier=notifier)
    summary["regressions"] = len(found)
    log.info("compare and report: %s", summary)
    return summary
