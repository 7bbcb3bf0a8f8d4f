"""MLflow REST API 2.0: ``/api/2.0/mlflow/metrics/get-history``, paged when asked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from modelyard.core.errors import InvalidParameter
from modelyard.server.deps import Tracking
from modelyard.server.mlflow_compat import schemas as s
from modelyard.server.mlflow_compat.translate import decode_offset, encode_offset, metric_json

__all__ = ["router"]

router = APIRouter(prefix="/metrics")

MAX_PAGE = 25_000  # the page size MLflow's client asks for
_PAGING = "history_offset"


@router.get("/get-history")
def get_metric_history(query: Annotated[s.GetMetricHistory, Query()], tracking: Tracking) -> dict:
    """Every point of one series in (step, timestamp) order; with ``max_results``, pages of
    at most that many points (25,000 at most) and a ``next_page_token`` while more remain."""
    if query.max_results is not None and query.max_results < 1:
        raise InvalidParameter(f"max_results must be positive, got {query.max_results}")
    points = tracking.get_metric_history(query.id, query.metric_key)
    start = decode_offset(_PAGING, query.page_token)
    limit = len(points) if query.max_results is None else min(query.max_results, MAX_PAGE)
    out: dict = {"metrics": [metric_json(m) for m in points[start : start + limit]]}
    if start + limit < len(points):
        out["next_page_token"] = encode_offset(_PAGING, start + limit)
    return out
