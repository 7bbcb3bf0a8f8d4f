"""What the MLflow client asks a server about itself, and the answer for endpoints this
adapter does not implement (MLflow's ENDPOINT_NOT_FOUND, which the client understands)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

__all__ = ["fallback_router", "router"]

log = logging.getLogger(__name__)

router = APIRouter()
fallback_router = APIRouter()


@router.get("/api/3.0/mlflow/server-info")
def server_info() -> dict:
    """Capabilities: no workspaces, no trace archival, uploads and downloads proxied whole
    (no multipart, no presigned URLs)."""
    return {
        "store_type": None,
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@fallback_router.api_route("/api/2.0/mlflow/{rest:path}", methods=_METHODS)
@fallback_router.api_route("/api/3.0/mlflow/{rest:path}", methods=_METHODS)
def not_implemented(request: Request, rest: str) -> JSONResponse:
    log.warning("MLflow endpoint not implemented: %s %s", request.method, request.url.path)
    return JSONResponse(
        {
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": f"This server does not implement {request.method} {request.url.path}",
        },
        status_code=404,
    )
