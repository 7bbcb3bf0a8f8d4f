"""MLflow REST API 2.0: ``/api/2.0/mlflow/runs/*`` over the tracking service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from modelyard.core.errors import InvalidParameter
from modelyard.server.deps import Tracking
from modelyard.server.mlflow_compat import schemas as s
from modelyard.server.mlflow_compat.translate import (
    DATASET_CONTEXT_TAG,
    ArtifactUris,
    Uris,
    run_info_json,
    run_json,
    run_status,
    tags_dict,
    view_type,
)
from modelyard.tracking.entities import Metric, Param, RunInput, RunTag
from modelyard.tracking.service import TrackingService

__all__ = ["router"]

router = APIRouter(prefix="/runs")


@router.post("/create")
def create_run(body: s.CreateRun, tracking: Tracking, uris: Uris) -> dict:
    run = tracking.create_run(
        body.experiment_id,
        run_name=body.run_name or None,
        start_time=body.start_time or None,
        tags=tags_dict(body.tags),
        user_id=body.user_id or "",
    )
    return {"run": run_json(run, uris)}


@router.get("/get")
def get_run(query: Annotated[s.RunRef, Query()], tracking: Tracking, uris: Uris) -> dict:
    return {"run": run_json(tracking.get_run(query.id), uris)}


@router.post("/update")
def update_run(body: s.UpdateRun, tracking: Tracking, uris: Uris) -> dict:
    info = tracking.update_run(
        body.id,
        status=run_status(body.status),
        end_time=body.end_time,
        run_name=body.run_name or None,
    )
    return {"run_info": run_info_json(info, uris)}


@router.post("/delete")
def delete_run(body: s.RunRef, tracking: Tracking) -> dict:
    tracking.delete_run(body.id)
    return {}


@router.post("/restore")
def restore_run(body: s.RunRef, tracking: Tracking) -> dict:
    tracking.restore_run(body.id)
    return {}


@router.post("/log-metric")
def log_metric(body: s.LogMetric, tracking: Tracking) -> dict:
    tracking.log_batch(body.id, metrics=[Metric(body.key, body.value, body.timestamp, body.step)])
    return {}


@router.post("/log-parameter")
def log_param(body: s.LogParam, tracking: Tracking) -> dict:
    tracking.log_param(body.id, body.key, body.value)
    return {}


@router.post("/set-tag")
def set_tag(body: s.SetTag, tracking: Tracking) -> dict:
    tracking.set_tag(body.id, body.key, body.value or "")
    return {}


@router.post("/delete-tag")
def delete_tag(body: s.DeleteTag, tracking: Tracking) -> dict:
    tracking.delete_tag(body.run_id, body.key)
    return {}


@router.post("/log-batch")
def log_batch(body: s.LogBatch, tracking: Tracking) -> dict:
    tracking.log_batch(
        body.run_id,
        metrics=[Metric(m.key, m.value, m.timestamp, m.step) for m in body.metrics],
        params=[Param(p.key, p.value) for p in body.params],  # type: ignore[arg-type]
        tags=[RunTag(t.key, t.value or "") for t in body.tags],
    )
    return {}


@router.post("/log-inputs")
def log_inputs(body: s.LogInputs, tracking: Tracking) -> dict:
    if body.models:
        raise InvalidParameter(
            "This server records dataset inputs only; logged-model inputs are not supported"
        )
    tracking.log_inputs(
        body.run_id,
        [
            RunInput(
                dataset_name=d.dataset.name,
                dataset_digest=d.dataset.digest,
                dataset_uri=d.dataset.source,
                context=tags_dict(d.tags).get(DATASET_CONTEXT_TAG),
            )
            for d in body.datasets
        ],
    )
    return {}


def _search(body: s.SearchRuns, tracking: TrackingService, uris: ArtifactUris) -> dict:
    page = tracking.search_runs(
        body.experiment_ids,
        body.filter or "",
        view_type(body.run_view_type),
        body.max_results,
        body.order_by,
        body.page_token or None,
    )
    out: dict = {"runs": [run_json(r, uris) for r in page.items]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


@router.post("/search")
def search_runs(body: s.SearchRuns, tracking: Tracking, uris: Uris) -> dict:
    return _search(body, tracking, uris)


@router.get("/search")
def search_runs_get(
    query: Annotated[s.SearchRuns, Query()], tracking: Tracking, uris: Uris
) -> dict:
    return _search(query, tracking, uris)
