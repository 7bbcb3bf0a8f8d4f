"""The HTTP server: `create_app(settings)` builds the FastAPI app; routers do the rest.

Resources (the tracking, registry and deployment services, the artifact root) live on
``app.state`` for the app's lifetime and reach handlers through dependencies
(``server/deps.py``).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from modelyard import __version__
from modelyard.core.artifacts import open_artifact_store
from modelyard.core.config import Settings
from modelyard.core.errors import ModelyardError
from modelyard.deploy.backends import open_deployments
from modelyard.registry.backends import open_registry
from modelyard.server.mlflow_compat import router as mlflow_router
from modelyard.server.responses import FastJSONResponse
from modelyard.server.routes import deployments as deployment_routes
from modelyard.server.routes import evaluation as evaluation_routes
from modelyard.server.routes import experiments as experiment_routes
from modelyard.server.routes import models as model_routes
from modelyard.server.routes import runs as run_routes
from modelyard.tracking.backends import open_tracking

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    """A modelyard server over the store and artifact root that ``settings`` name."""
    if settings.is_remote:
        raise ModelyardError("A server keeps its own store: unset MODELYARD_TRACKING_URI for it")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        app.state.tracking = open_tracking(settings)
        app.state.registry = open_registry(app.state.tracking)
        app.state.deployments = open_deployments(app.state.tracking)
        app.state.artifacts = open_artifact_store(settings.resolved_artifacts)
        try:
            yield
        finally:
            app.state.tracking.store.close()

    app = FastAPI(
        title="modelyard",
        version=__version__,
        lifespan=lifespan,
        default_response_class=FastJSONResponse,
    )
    app.include_router(experiment_routes.router, prefix="/api/v1")
    app.include_router(run_routes.router, prefix="/api/v1")
    app.include_router(evaluation_routes.router, prefix="/api/v1")
    app.include_router(model_routes.router, prefix="/api/v1")
    app.include_router(deployment_routes.router, prefix="/api/v1")
    app.include_router(mlflow_router.router)

    @app.exception_handler(ModelyardError)
    async def modelyard_error(request: Request, exc: ModelyardError) -> FastJSONResponse:
        return FastJSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> FastJSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        )
        return FastJSONResponse(
            {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Invalid request: {problems}"},
            status_code=400,
        )

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "version": __version__}

    return app
