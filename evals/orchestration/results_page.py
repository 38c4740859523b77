"""The Results page as the Airflow plugin mounts it: the app of :mod:`evals.ui`, behind Airflow's own sign-in."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_airflow_app() -> FastAPI:
    """The app as the plugin mounts it: every route needs a signed-in Airflow user allowed to see the website.

    Airflow does not authenticate plugin apps (a mount inherits none of the core API's dependencies), so the
    app applies the core API's own check: a bearer token or the UI's session cookie, validated by the
    configured auth manager.
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends

    from evals.ui.app import create_app

    return create_app(dependencies=[Depends(requires_access_view(AccessView.WEBSITE))])
