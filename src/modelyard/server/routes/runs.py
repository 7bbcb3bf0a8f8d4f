"""Native API: runs, their data and artifacts (``/api/v1/runs``). Each handler is one
service call; `log_batch` is the hot path the SDK's REST client streams metrics to."""

from __future__ import annotations

from fastapi import APIRouter, Response

from modelyard.server.artifact_uris import Uris
from modelyard.server.deps import Tracking
from modelyard.server.responses import FastJSONResponse
from modelyard.server.schemas import (
    ERROR_RESPONSES,
    ArtifactList,
    CreateRunRequest,
    Empty,
    JSONRoute,
    LogBatchRequest,
    LogInputsRequest,
    MetricHistory,
    RunInfoOut,
    RunOut,
    RunPage,
    SearchRunsRequest,
    SetLifecycleRequest,
    UpdateRunRequest,
)

__all__ = ["router"]

router = APIRouter(prefix="/runs", tags=["runs"], route_class=JSONRoute, responses=ERROR_RESPONSES)


@router.post(
    "",
    response_model=RunOut,
    summary="Create a run",
    description="Starts a RUNNING run in an active experiment. A missing `run_name` gets a "
    "random one; `parent_run_id` makes a nested run.",
)
def create_run(body: CreateRunRequest, tracking: Tracking, uris: Uris) -> Response:
    return FastJSONResponse(uris.public_run(tracking.create_run(**body.model_dump())))


@router.post(
    "/search",
    response_model=RunPage,
    summary="Search runs",
    description="Runs of the given experiments matching `filter` (MLflow's filter syntax, "
    "plus OR, NOT, parentheses, IN, BETWEEN, IS NULL), ordered by `order_by` "
    "(e.g. `metrics.auc DESC`), one page at a time.",
)
def search_runs(body: SearchRunsRequest, tracking: Tracking, uris: Uris) -> Response:
    page = tracking.search_runs(
        body.experiment_ids,
        filter_string=body.filter,
        view_type=body.view,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token,
    )
    return FastJSONResponse(
        {"runs": [uris.public_run(r) for r in page.items], "next_page_token": page.next_page_token}
    )


@router.get(
    "/{run_id}",
    response_model=RunOut,
    summary="Get a run",
    description="Info, params, tags, the latest point of each metric, and dataset inputs. "
    "404 RESOURCE_DOES_NOT_EXIST for an unknown run id.",
)
def get_run(run_id: str, tracking: Tracking, uris: Uris) -> Response:
    return FastJSONResponse(uris.public_run(tracking.get_run(run_id)))


@router.patch(
    "/{run_id}",
    response_model=RunInfoOut,
    summary="Update a run",
    description="Set the status (ending a run with FINISHED, FAILED or KILLED; RUNNING "
    "reopens it), the end time or the name.",
)
def update_run(run_id: str, body: UpdateRunRequest, tracking: Tracking, uris: Uris) -> Response:
    return FastJSONResponse(uris.public_info(tracking.update_run(run_id, **body.model_dump())))


@router.put(
    "/{run_id}/lifecycle",
    response_model=Empty,
    summary="Delete or restore a run",
    description="'deleted' soft-deletes the run (logging to it is then refused); "
    "'active' restores it.",
)
def set_run_lifecycle(run_id: str, body: SetLifecycleRequest, tracking: Tracking) -> Response:
    tracking.set_run_lifecycle(run_id, body.lifecycle_stage)
    return FastJSONResponse({})


@router.post(
    "/{run_id}/batch",
    response_model=Empty,
    summary="Log metrics, params and tags",
    description="All of the batch or none of it, in one transaction. A param already "
    "logged with another value, a finished or deleted run, or any invalid item rejects "
    "the whole batch with 400. Resending a batch is harmless.",
)
def log_batch(run_id: str, body: LogBatchRequest, tracking: Tracking) -> Response:
    tracking.log_batch(run_id, metrics=body.metrics, params=body.params, tags=body.tags)
    return FastJSONResponse({})


@router.delete(
    "/{run_id}/tags/{key:path}",
    response_model=Empty,
    summary="Delete a run tag",
    description="404 RESOURCE_DOES_NOT_EXIST when the run has no such tag.",
)
def delete_tag(run_id: str, key: str, tracking: Tracking) -> Response:
    tracking.delete_tag(run_id, key)
    return FastJSONResponse({})


@router.post(
    "/{run_id}/inputs",
    response_model=Empty,
    summary="Record dataset inputs",
    description="The dataset versions (name, digest, optional URI and context such as "
    "'train') the run consumed.",
)
def log_inputs(run_id: str, body: LogInputsRequest, tracking: Tracking) -> Response:
    tracking.log_inputs(run_id, body.inputs)
    return FastJSONResponse({})


@router.get(
    "/{run_id}/metrics/{key:path}/history",
    response_model=MetricHistory,
    summary="Get a metric's history",
    description="Every point of the series in (step, timestamp) order, or with "
    "`max_points` (at least 4) a downsampled series that keeps each bucket's first, last, "
    "minimum and maximum point.",
)
def get_metric_history(
    run_id: str, key: str, tracking: Tracking, max_points: int | None = None
) -> Response:
    points = tracking.get_metric_history(run_id, key, max_points)
    return FastJSONResponse({"metrics": [m.to_dict() for m in points]})


@router.get(
    "/{run_id}/artifacts",
    response_model=ArtifactList,
    summary="List a run's artifacts",
    description="The direct children of `path` (the artifact root when empty); paths are "
    "relative to the run's artifact root.",
)
def list_artifacts(run_id: str, tracking: Tracking, path: str = "") -> Response:
    return FastJSONResponse({"files": tracking.list_artifacts(run_id, path)})
