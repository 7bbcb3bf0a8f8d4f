"""MLflow REST API 2.0: ``/api/2.0/mlflow/experiments/*`` over the tracking service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from modelyard.core.errors import InvalidParameter, ResourceNotFound
from modelyard.server.deps import Tracking
from modelyard.server.mlflow_compat import schemas as s
from modelyard.server.mlflow_compat.experiment_search import (
    matches,
    parse_experiment_filter,
    sort_experiments,
)
from modelyard.server.mlflow_compat.translate import (
    ArtifactUris,
    Uris,
    decode_offset,
    encode_offset,
    experiment_json,
    tags_dict,
    view_type,
)
from modelyard.tracking.entities import Experiment
from modelyard.tracking.service import TrackingService

__all__ = ["router"]

router = APIRouter(prefix="/experiments")

MAX_RESULTS = 50_000
_STORE_PAGE = 1000
_PAGING = "experiments_offset"


@router.post("/create")
def create_experiment(body: s.CreateExperiment, tracking: Tracking, uris: Uris) -> dict:
    experiment_id = tracking.create_experiment(
        body.name, uris.from_mlflow(body.artifact_location), tags_dict(body.tags)
    )
    return {"experiment_id": experiment_id}


@router.get("/get")
def get_experiment(
    query: Annotated[s.ExperimentRef, Query()], tracking: Tracking, uris: Uris
) -> dict:
    return {"experiment": experiment_json(tracking.get_experiment(query.experiment_id), uris)}


@router.get("/get-by-name")
def get_experiment_by_name(
    query: Annotated[s.GetExperimentByName, Query()], tracking: Tracking, uris: Uris
) -> dict:
    exp = tracking.get_experiment_by_name(query.experiment_name)
    if exp is None:
        raise ResourceNotFound(f"Could not find experiment with name {query.experiment_name!r}")
    return {"experiment": experiment_json(exp, uris)}


def _all_experiments(tracking: TrackingService, view: str) -> list[Experiment]:
    items: list[Experiment] = []
    token = None
    while True:
        page = tracking.search_experiments(
            view_type=view, max_results=_STORE_PAGE, page_token=token
        )
        items.extend(page.items)
        token = page.next_page_token
        if not token:
            return items


def _search(body: s.SearchExperiments, tracking: TrackingService, uris: ArtifactUris) -> dict:
    limit = body.max_results or 1000
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidParameter(f"max_results must be between 1 and {MAX_RESULTS}, got {limit}")
    keep = matches(parse_experiment_filter(body.filter))
    found = [e for e in _all_experiments(tracking, view_type(body.view_type)) if keep(e)]
    ordered = sort_experiments(found, body.order_by)
    start = decode_offset(_PAGING, body.page_token)
    out: dict = {"experiments": [experiment_json(e, uris) for e in ordered[start : start + limit]]}
    if start + limit < len(ordered):
        out["next_page_token"] = encode_offset(_PAGING, start + limit)
    return out


@router.post("/search")
def search_experiments(body: s.SearchExperiments, tracking: Tracking, uris: Uris) -> dict:
    return _search(body, tracking, uris)


@router.get("/search")
def search_experiments_get(
    query: Annotated[s.SearchExperiments, Query()], tracking: Tracking, uris: Uris
) -> dict:
    return _search(query, tracking, uris)


@router.post("/delete")
def delete_experiment(body: s.ExperimentRef, tracking: Tracking) -> dict:
    tracking.delete_experiment(body.experiment_id)
    return {}


@router.post("/restore")
def restore_experiment(body: s.ExperimentRef, tracking: Tracking) -> dict:
    tracking.restore_experiment(body.experiment_id)
    return {}


@router.post("/update")
def update_experiment(body: s.UpdateExperiment, tracking: Tracking) -> dict:
    tracking.rename_experiment(body.experiment_id, body.new_name)
    return {}


@router.post("/set-experiment-tag")
def set_experiment_tag(body: s.SetExperimentTag, tracking: Tracking) -> dict:
    tracking.set_experiment_tag(body.experiment_id, body.key, body.value or "")
    return {}
