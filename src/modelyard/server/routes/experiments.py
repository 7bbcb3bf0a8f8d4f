"""Native API: experiments (``/api/v1/experiments``). Each handler is one service call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from modelyard.core.errors import ResourceNotFound
from modelyard.server.artifact_uris import Uris
from modelyard.server.deps import Tracking
from modelyard.server.responses import FastJSONResponse
from modelyard.server.schemas import (
    ERROR_RESPONSES,
    CreateExperimentRequest,
    Empty,
    ExperimentCreated,
    ExperimentOut,
    ExperimentPage,
    JSONRoute,
    SetTagRequest,
    UpdateExperimentRequest,
    ViewType,
)

__all__ = ["router"]

router = APIRouter(
    prefix="/experiments", tags=["experiments"], route_class=JSONRoute, responses=ERROR_RESPONSES
)


@router.post(
    "",
    response_model=ExperimentCreated,
    summary="Create an experiment",
    description="400 RESOURCE_ALREADY_EXISTS when the name is taken (a deleted experiment "
    "keeps its name).",
)
def create_experiment(body: CreateExperimentRequest, tracking: Tracking, uris: Uris) -> Response:
    location = uris.from_mlflow(body.artifact_location)
    experiment_id = tracking.create_experiment(body.name, location, body.tags)
    return FastJSONResponse({"experiment_id": experiment_id})


@router.get(
    "",
    response_model=ExperimentPage,
    summary="List experiments",
    description="One page of experiments in id order. `name_like` is a SQL LIKE pattern "
    "(`%` any run of characters, `_` one character).",
)
def search_experiments(
    tracking: Tracking,
    uris: Uris,
    view: ViewType = "active",
    max_results: Annotated[int, Query(ge=1, le=50_000)] = 1000,
    page_token: str | None = None,
    name_like: str | None = None,
) -> Response:
    page = tracking.search_experiments(
        view_type=view, max_results=max_results, page_token=page_token, name_like=name_like
    )
    experiments = [uris.public_experiment(e) for e in page.items]
    return FastJSONResponse({"experiments": experiments, "next_page_token": page.next_page_token})


@router.get(
    "/by-name/{name:path}",
    response_model=ExperimentOut,
    summary="Get an experiment by name",
    description="404 RESOURCE_DOES_NOT_EXIST when no experiment has this name.",
)
def get_experiment_by_name(name: str, tracking: Tracking, uris: Uris) -> Response:
    exp = tracking.get_experiment_by_name(name)
    if exp is None:
        raise ResourceNotFound(f"No experiment named {name!r}")
    return FastJSONResponse(uris.public_experiment(exp))


@router.get(
    "/{experiment_id}",
    response_model=ExperimentOut,
    summary="Get an experiment",
    description="404 RESOURCE_DOES_NOT_EXIST for an unknown id.",
)
def get_experiment(experiment_id: str, tracking: Tracking, uris: Uris) -> Response:
    return FastJSONResponse(uris.public_experiment(tracking.get_experiment(experiment_id)))


@router.patch(
    "/{experiment_id}",
    response_model=ExperimentOut,
    summary="Rename, delete or restore an experiment",
    description="`new_name` renames; `lifecycle_stage` 'deleted' deletes the experiment "
    "with its runs, 'active' restores them. Returns the experiment afterwards.",
)
def update_experiment(
    experiment_id: str, body: UpdateExperimentRequest, tracking: Tracking, uris: Uris
) -> Response:
    exp = tracking.update_experiment(experiment_id, **body.model_dump())
    return FastJSONResponse(uris.public_experiment(exp))


@router.put(
    "/{experiment_id}/tags/{key:path}",
    response_model=Empty,
    summary="Set an experiment tag",
    description="Creates the tag or overwrites its value.",
)
def set_experiment_tag(
    experiment_id: str, key: str, body: SetTagRequest, tracking: Tracking
) -> Response:
    tracking.set_experiment_tag(experiment_id, key, body.value)
    return FastJSONResponse({})
