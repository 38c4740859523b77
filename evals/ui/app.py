"""The FastAPI app behind the Results page: HTML at ``/`` and the same data as JSON under ``/api``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from evals.ui import render
from evals.ui.queries import Results, read_api, read_results

log = logging.getLogger(__name__)

# Scripts only from this app (plotly.js and the page script, served below; figures are JSON data blocks, never
# inline code), nothing fetched from elsewhere, framed only by the Airflow UI itself. Plotly sets inline styles.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
STATIC = {"plotly.min.js", "figures.js"}  # served from the installed packages' own files, never a CDN


class WarehouseUnavailable(Exception):
    """The warehouse (or the settings naming it) could not be read; the message is safe to show."""


def _read(model_id: str | None = None, suite: str | None = None, scenario: str | None = None) -> Results:
    try:
        return read_results(model_id, suite=suite, scenario=scenario)
    except Exception as exc:
        # Any failure here (bad settings, unreachable bucket, unreadable file) is an operational state the page
        # must explain, not a stack trace; the traceback goes to the API server's log.
        log.exception("evals results: reading the warehouse failed")
        raise WarehouseUnavailable(f"The results warehouse could not be read: {type(exc).__name__}: {exc}") from exc


def _api(kind: str, model_id: str | None = None) -> tuple[str, Any]:
    try:
        return read_api(kind, model_id)
    except Exception as exc:
        log.exception("evals results: reading the warehouse failed")
        raise WarehouseUnavailable(f"The results warehouse could not be read: {type(exc).__name__}: {exc}") from exc


def _wants_json(request: Request) -> bool:
    return "/api/" in request.url.path


def create_app(*, dependencies: Sequence[Any] = ()) -> FastAPI:
    """The app; ``dependencies`` run before every route (the Airflow plugin passes its authentication)."""
    app = FastAPI(
        title="checkpoint-evals results",
        dependencies=list(dependencies),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(WarehouseUnavailable)
    async def unavailable(request: Request, exc: WarehouseUnavailable) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=503, headers=SECURITY_HEADERS)
        page = render.notice_page("Results unavailable", str(exc), error=True)
        return HTMLResponse(page, status_code=503, headers=SECURITY_HEADERS)

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> Response:
        # Someone opening the page outside the Airflow UI without a session gets a pointer, not bare JSON.
        if exc.status_code in (401, 403) and not _wants_json(request):
            # The app is mounted at <base>/evals/, so "../" is the Airflow UI, which sends a visitor to its login.
            page = render.notice_page(
                "Sign in to Airflow",
                "The results page needs an Airflow session: sign in, then open Results from the navigation.",
                link=("../", "Open Airflow"),
            )
            return HTMLResponse(page, status_code=exc.status_code, headers=SECURITY_HEADERS)
        return await http_exception_handler(request, exc)

    # Routes are sync on purpose: FastAPI runs them in its thread pool, so a slow warehouse never blocks the
    # API server's event loop.
    @app.get("/", response_class=HTMLResponse)
    def page(
        model_id: str | None = Query(None, max_length=500),
        suite: str | None = Query(None, max_length=200),
        scenario: str | None = Query(None, max_length=200),
    ) -> HTMLResponse:
        # An empty select ("all") arrives as an empty string.
        results = _read(model_id or None, suite or None, scenario or None)
        return HTMLResponse(render.results_page(results, model_id or None), headers=SECURITY_HEADERS)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(status_code=404, detail="not found")
        from evals.report.sections import asset

        headers = {**SECURITY_HEADERS, "Cache-Control": "private, max-age=3600"}
        return Response(asset(name), media_type="text/javascript; charset=utf-8", headers=headers)

    @app.get("/api/leaderboard")
    def api_leaderboard() -> JSONResponse:
        warehouse, rows = _api("leaderboard")
        return JSONResponse({"warehouse": warehouse, "rows": rows}, headers=SECURITY_HEADERS)

    @app.get("/api/trends")
    def api_trends(model_id: str | None = Query(None, max_length=500)) -> JSONResponse:
        warehouse, trends = _api("trends", model_id)
        if model_id is not None and model_id not in trends:
            raise HTTPException(status_code=404, detail=f"no published runs of model {model_id!r}")
        series = [{"model_id": model, "points": points} for model, points in trends.items()]
        return JSONResponse({"warehouse": warehouse, "models": series}, headers=SECURITY_HEADERS)

    return app
