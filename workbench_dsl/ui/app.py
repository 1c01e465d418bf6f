"""The dashboard's web app: pages, actions, packaged static files and the access rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from workbench_dsl.errors import UsageError, WorkbenchError
from workbench_dsl.paths import LocalRoot
from workbench_dsl.ui import security
from workbench_dsl.ui.pages import (
    endpoints,
    experiments,
    lineage,
    models,
    runs,
    schedules,
    sweeps,
)
from workbench_dsl.ui.render import STATIC, page
from workbench_dsl.ui.state import UiState


def create_app(
    root: LocalRoot,
    access: security.Access,
    *,
    tracking_uri: str | None = None,
    metrics_interval: float | None = 5.0,
) -> FastAPI:
    """The dashboard for the local root ``root``.

    Args:
        root: The local root to read (run store, registry, lineage, endpoints, schedules).
        access: The token and binding the access rules check.
        tracking_uri: The registry (default: ``[registry] tracking_uri``, else the local one).
        metrics_interval: Seconds between readings of running endpoints' ``/metrics``
            (None: only when a page asks).
    """
    state = UiState(root, tracking_uri=tracking_uri)
    if metrics_interval:
        state.metrics.interval = metrics_interval

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if metrics_interval:
            state.metrics.start(state.running_endpoints)
        try:
            yield
        finally:
            state.metrics.stop()

    app = FastAPI(
        title="workbench ui",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.ui = state
    app.state.access = access
    app.middleware("http")(security.guard)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (runs, experiments, sweeps, models, endpoints, schedules, lineage):
        app.include_router(module.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        # The same exposition as `workbench metrics serve`; the guard above applies to it
        # (a Prometheus on another machine sends the token: `authorization` in its config).
        from prometheus_client import CONTENT_TYPE_LATEST

        from workbench_dsl.telemetry.prometheus import exposition

        return Response(exposition(root), media_type=CONTENT_TYPE_LATEST)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.exception_handler(WorkbenchError)
    def user_error(request: Request, exc: WorkbenchError) -> Response:
        # A run, model or endpoint that is not there (or a bad value): say so on a page.
        status = 404 if isinstance(exc, UsageError) else 500
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=status)
        return page(request, "error.html", status_code=status, title="Not found", message=str(exc))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or exc.status_code not in (404, 405):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return page(
            request,
            "error.html",
            status_code=exc.status_code,
            title="Not found" if exc.status_code == 404 else "Not allowed",
            message=f"{request.url.path}: {exc.detail}",
        )

    @app.exception_handler(security.Forbidden)
    def forbidden(request: Request, exc: security.Forbidden) -> Response:
        return PlainTextResponse(str(exc) + "\n", status_code=403)

    return app
