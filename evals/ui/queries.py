"""What the Results page shows, read from a fresh DuckDB snapshot of the warehouse on every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evals.analysis.leaderboard import COLUMN_NAMES

# The leaderboard's columns, which the page and the JSON API show (the same rows as `select * from leaderboard`).
LEADERBOARD_COLUMNS = COLUMN_NAMES


@dataclass(frozen=True)
class Results:
    """One consistent read of the warehouse: what the figures draw, the filters on offer, and one model's record."""

    warehouse: str
    data: dict[str, Any]
    options: dict[str, list[str]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] | None = None

    @property
    def leaderboard(self) -> list[dict[str, Any]]:
        return list(self.data["leaderboard"])

    @property
    def trends(self) -> dict[str, list[dict[str, Any]]]:
        return dict(self.data["trends"])


def read_results(model_id: str | None = None, *, suite: str | None = None, scenario: str | None = None) -> Results:
    """Open the warehouse named by the settings now (not at import) and read everything the page shows."""
    from evals.report import figure_data
    from evals.report.sections import collect
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    warehouse = Warehouse.from_settings()
    con = connect(warehouse)
    try:
        data = collect(
            con,
            min_goodput=warehouse.settings.leaderboard_min_goodput,
            suite=suite,
            scenario=scenario,
            model_id=model_id,
        )
        if model_id is None:
            data["discovery"] = warehouse.latest_discovery()
        return Results(
            warehouse=warehouse.uri,
            data=data,
            options=figure_data.filter_options(con),
            history=figure_data.history(con, model_id) if model_id is not None else [],
            provenance=figure_data.provenance(con, model_id) if model_id is not None else None,
        )
    finally:
        con.close()


def read_api(kind: str, model_id: str | None = None) -> tuple[str, Any]:
    """(warehouse, rows) of the JSON API: the leaderboard, or every model's trend points."""
    from evals.report import figure_data
    from evals.warehouse import Warehouse
    from evals.warehouse.views import connect

    warehouse = Warehouse.from_settings()
    con = connect(warehouse)
    try:
        if kind == "leaderboard":
            return warehouse.uri, figure_data.leaderboard(con)
        models = [model_id] if model_id is not None else None
        return warehouse.uri, figure_data.trends(con, models, min_goodput=warehouse.settings.leaderboard_min_goodput)
    finally:
        con.close()
