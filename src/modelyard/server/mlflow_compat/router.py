"""The MLflow-compatible API in one router, for `create_app` to include.

Under ``/api/2.0/mlflow``: experiments, runs, metric history, the (always empty)
logged-models search and the model registry; beside them the artifact proxy
``/api/2.0/mlflow-artifacts`` and the ``/api/3.0/mlflow/server-info`` probe. Anything
else under ``/api/{2,3}.0/mlflow`` answers MLflow's ENDPOINT_NOT_FOUND (and is logged):
add new MLflow routers to ``_ROUTERS`` here, so they come before that fallback.
"""

from __future__ import annotations

from fastapi import APIRouter

from modelyard.server.mlflow_compat import (
    artifacts,
    experiments,
    logged_models,
    metrics,
    probes,
    registry,
    runs,
)

__all__ = ["router"]

PREFIX = "/api/2.0/mlflow"

_ROUTERS: list[tuple[APIRouter, str]] = [
    (experiments.router, PREFIX),
    (runs.router, PREFIX),
    (metrics.router, PREFIX),
    (logged_models.router, PREFIX),
    (registry.router, PREFIX),
    (artifacts.router, ""),
    (probes.router, ""),
]

router = APIRouter(tags=["mlflow"])
for sub, prefix in _ROUTERS:
    router.include_router(sub, prefix=prefix)
router.include_router(probes.fallback_router)  # last: catches what no router above serves
