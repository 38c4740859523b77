"""Airflow plugin: the Results page (leaderboard, figures, per-model history) in the Airflow UI, served at /evals/."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from evals.ui.asgi import LazyASGIApp

# Every Airflow component loads plugins; only the API server serves this app, and it builds it on first use.
results_app = {
    "app": LazyASGIApp("evals.orchestration.results_page:create_airflow_app"),
    "url_prefix": "/evals",
    "name": "Evaluation results",
}

# An external view with a url_route is embedded in the UI (an iframe at /plugin/evals-results). The href has
# no leading slash: the UI resolves it against its base URL, so it still works under a path prefix.
results_view = {
    "name": "Results",
    "href": "evals/",
    "destination": "nav",
    "url_route": "evals-results",
    "nav_top_level": True,
}


class EvalsResultsPlugin(AirflowPlugin):
    """The checkpoint-evals results page: leaderboard, figures and per-model pages read from the warehouse."""

    name = "evals_results"
    fastapi_apps = [results_app]  # noqa: RUF012 - the AirflowPlugin API is class-level lists
    external_views = [results_view]  # noqa: RUF012
