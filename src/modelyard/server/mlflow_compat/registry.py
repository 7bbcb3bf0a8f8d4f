"""MLflow REST API 2.0: the model registry (``/api/2.0/mlflow/registered-models/*`` and
``/model-versions/*``) over the registry service.

What the ``mlflow`` client sends: GET fields as query parameters, everything else
(DELETE included) as a JSON body; ``update`` calls are PATCH. Versions are registered
synchronously, so a new version is READY at once and the client's wait ends at once.
A version the mlflow client registers from a run arrives with the run's artifact
location as ``source`` (``mlflow-artifacts:/...``) and the ``run_id``: it is recorded
as ``runs:/<run_id>/<path>``, so the version snapshots the run's metrics and dataset
lineage like one registered through modelyard. The policy of a model applies here
too: a refused promotion is INVALID_STATE (HTTP 409) with the policy's terms.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from modelyard.core.errors import InvalidParameter
from modelyard.registry.entities import ModelVersion, RegisteredModel, Stage
from modelyard.registry.service import RegistryService
from modelyard.server.artifact_uris import ArtifactUris, Uris
from modelyard.server.deps import Registry, Tracking
from modelyard.server.mlflow_compat.registry_translate import (
    MODEL_KEYS,
    VERSION_KEYS,
    exact_value,
    like_prefix_safe,
    matches,
    model_version_json,
    parse_filter,
    registered_model_json,
    sort_models,
    sort_versions,
)
from modelyard.server.mlflow_compat.schemas import KeyValue, MlflowBody
from modelyard.server.mlflow_compat.translate import decode_offset, encode_offset, tags_dict
from modelyard.tracking.service import TrackingService

__all__ = ["router"]

router = APIRouter()

MAX_MODELS_PAGE = 1000  # MLflow's limits per search page
MAX_VERSIONS_PAGE = 200_000
_STORE_PAGE = 1000
_LOGGED_MODEL = re.compile(r"^models:/m-[0-9a-f]+/?$")


# -- request bodies and queries ----------------------------------------------------------
class ModelRef(MlflowBody):
    name: str


class CreateRegisteredModel(ModelRef):
    tags: list[KeyValue] = Field(default_factory=list)
    description: str | None = None


class UpdateRegisteredModel(ModelRef):
    description: str | None = None


class RenameRegisteredModel(ModelRef):
    new_name: str


class ModelTag(ModelRef):
    key: str
    value: str | None = None


class Search(MlflowBody):
    filter: str | None = None
    max_results: int | None = None
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class LatestVersions(ModelRef):
    stages: list[str] = Field(default_factory=list)


class CreateModelVersion(ModelRef):
    source: str
    run_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None


class VersionRef(ModelRef):
    version: str


class UpdateModelVersion(VersionRef):
    description: str | None = None


class TransitionStage(VersionRef):
    stage: str
    archive_existing_versions: bool = False


class VersionTag(VersionRef):
    key: str
    value: str | None = None


class AliasRef(ModelRef):
    alias: str


class SetAlias(AliasRef):
    version: str


# -- registered models -----------------------------------------------------------------
def _model(m: RegisteredModel, uris: ArtifactUris) -> dict:
    return {"registered_model": registered_model_json(m, uris)}


def _version(v: ModelVersion, uris: ArtifactUris) -> dict:
    return {"model_version": model_version_json(v, uris)}


@router.post("/registered-models/create")
def create_registered_model(body: CreateRegisteredModel, reg: Registry, uris: Uris) -> dict:
    return _model(
        reg.create_registered_model(body.name, body.description, tags_dict(body.tags)), uris
    )


@router.get("/registered-models/get")
def get_registered_model(query: Annotated[ModelRef, Query()], reg: Registry, uris: Uris) -> dict:
    return _model(reg.get_registered_model(query.name), uris)


@router.patch("/registered-models/update")
def update_registered_model(body: UpdateRegisteredModel, reg: Registry, uris: Uris) -> dict:
    return _model(reg.update_registered_model(body.name, body.description or ""), uris)


@router.post("/registered-models/rename")
def rename_registered_model(body: RenameRegisteredModel, reg: Registry, uris: Uris) -> dict:
    return _model(reg.rename_registered_model(body.name, body.new_name), uris)


@router.delete("/registered-models/delete")
def delete_registered_model(body: ModelRef, reg: Registry) -> dict:
    reg.delete_registered_model(body.name)
    return {}


@router.post("/registered-models/set-tag")
def set_registered_model_tag(body: ModelTag, reg: Registry) -> dict:
    reg.set_registered_model_tag(body.name, body.key, body.value or "")
    return {}


@router.delete("/registered-models/delete-tag")
def delete_registered_model_tag(body: ModelTag, reg: Registry) -> dict:
    reg.set_registered_model_tag(body.name, body.key, None)
    return {}


def _page_size(value: int | None, default: int, limit: int) -> int:
    size = default if value is None else value
    if not 1 <= size <= limit:
        raise InvalidParameter(f"max_results must be between 1 and {limit}, got {size}")
    return size


def _page(items: list, token: str | None, size: int, kind: str) -> tuple[list, str | None]:
    start = decode_offset(kind, token)
    more = start + size < len(items)
    return items[start : start + size], encode_offset(kind, start + size) if more else None


def _all_models(reg: RegistryService, name_like: str | None) -> list[RegisteredModel]:
    found: list[RegisteredModel] = []
    while True:
        page, more = reg.search_registered_models(name_like, _STORE_PAGE, len(found))
        found.extend(page)
        if not more:
            return found


@router.get("/registered-models/search")
def search_registered_models(query: Annotated[Search, Query()], reg: Registry, uris: Uris) -> dict:
    """Filtered, ordered and paged here (registries hold hundreds of models, not
    millions); a name clause narrows what is read from the store."""
    size = _page_size(query.max_results, 100, MAX_MODELS_PAGE)
    clauses = parse_filter(query.filter, MODEL_KEYS, "registered models")
    keep = matches(clauses)
    found = [m for m in _all_models(reg, like_prefix_safe(clauses)) if keep(m)]
    page, token = _page(sort_models(found, query.order_by), query.page_token, size, "models")
    out: dict = {"registered_models": [registered_model_json(m, uris) for m in page]}
    if token:
        out["next_page_token"] = token
    return out


def _latest_versions(body: LatestVersions, reg: RegistryService, uris: ArtifactUris) -> dict:
    wanted = {Stage.parse(s).value for s in body.stages}
    latest = reg.get_registered_model(body.name).latest_versions
    return {
        "model_versions": [
            model_version_json(v, uris) for v in latest if not wanted or v.stage in wanted
        ]
    }


@router.post("/registered-models/get-latest-versions")
def get_latest_versions(body: LatestVersions, reg: Registry, uris: Uris) -> dict:
    return _latest_versions(body, reg, uris)


@router.get("/registered-models/get-latest-versions")
def get_latest_versions_get(
    query: Annotated[LatestVersions, Query()], reg: Registry, uris: Uris
) -> dict:
    return _latest_versions(query, reg, uris)


# -- aliases ---------------------------------------------------------------------------
@router.post("/registered-models/alias")
def set_alias(body: SetAlias, reg: Registry) -> dict:
    reg.set_alias(body.name, body.alias, body.version)
    return {}


@router.delete("/registered-models/alias")
def delete_alias(body: AliasRef, reg: Registry) -> dict:
    reg.delete_alias(body.name, body.alias)
    return {}


@router.get("/registered-models/alias")
def get_model_version_by_alias(
    query: Annotated[AliasRef, Query()], reg: Registry, uris: Uris
) -> dict:
    return _version(reg.get_version_by_alias(query.name, query.alias), uris)


# -- model versions --------------------------------------------------------------------
def _version_source(body: CreateModelVersion, tracking: TrackingService, uris: ArtifactUris) -> str:
    """Where the service should look for the version: a run's artifact location given
    with its ``run_id`` becomes ``runs:/<run_id>/<path>``; other ``mlflow-artifacts:/``
    URIs become the server's own locations."""
    source = body.source.strip()
    if _LOGGED_MODEL.match(source):
        raise InvalidParameter(
            f"Cannot register {source!r}: this server does not record MLflow logged models; "
            "register the run's model folder instead (runs:/<run_id>/<path>)"
        )
    if source.startswith("runs:/") or not body.run_id:
        return uris.from_mlflow(source) or source
    public = uris.to_mlflow(uris.from_mlflow(source) or source).rstrip("/")
    run_root = uris.to_mlflow(tracking.get_run(body.run_id).info.artifact_uri).rstrip("/")
    if public == run_root or public.startswith(run_root + "/"):
        return f"runs:/{body.run_id}/{public[len(run_root) :].strip('/')}"
    return uris.from_mlflow(source) or source


@router.post("/model-versions/create")
def create_model_version(
    body: CreateModelVersion, reg: Registry, tracking: Tracking, uris: Uris
) -> dict:
    version = reg.register_model(
        _version_source(body, tracking, uris),
        body.name,
        description=body.description or None,
        tags=tags_dict(body.tags),
        require_package=False,
    )
    return _version(version, uris)


@router.get("/model-versions/get")
def get_model_version(query: Annotated[VersionRef, Query()], reg: Registry, uris: Uris) -> dict:
    return _version(reg.get_model_version(query.name, query.version), uris)


@router.patch("/model-versions/update")
def update_model_version(body: UpdateModelVersion, reg: Registry, uris: Uris) -> dict:
    return _version(reg.update_model_version(body.name, body.version, body.description or ""), uris)


@router.delete("/model-versions/delete")
def delete_model_version(body: VersionRef, reg: Registry) -> dict:
    reg.delete_model_version(body.name, body.version)
    return {}


@router.post("/model-versions/transition-stage")
def transition_stage(body: TransitionStage, reg: Registry, uris: Uris) -> dict:
    moved = reg.transition_stage(
        body.name, body.version, body.stage, archive_existing=body.archive_existing_versions
    )
    return _version(moved, uris)


@router.get("/model-versions/get-download-uri")
def get_download_uri(query: Annotated[VersionRef, Query()], reg: Registry, uris: Uris) -> dict:
    version = reg.get_model_version(query.name, query.version)
    return {"artifact_uri": uris.to_mlflow(version.artifact_uri)}


@router.post("/model-versions/set-tag")
def set_model_version_tag(body: VersionTag, reg: Registry) -> dict:
    reg.set_model_version_tag(body.name, body.version, body.key, body.value or "")
    return {}


@router.delete("/model-versions/delete-tag")
def delete_model_version_tag(body: VersionTag, reg: Registry) -> dict:
    reg.set_model_version_tag(body.name, body.version, body.key, None)
    return {}


def _all_versions(reg: RegistryService, name: str | None, run_id: str | None) -> list:
    found: list[ModelVersion] = []
    while True:
        page, more = reg.search_model_versions(name, run_id, _STORE_PAGE, len(found))
        found.extend(page)
        if not more:
            return found


@router.get("/model-versions/search")
def search_model_versions(query: Annotated[Search, Query()], reg: Registry, uris: Uris) -> dict:
    """Filtered, ordered and paged here; ``name = '...'`` and ``run_id = '...'`` clauses
    narrow what is read from the store."""
    size = _page_size(query.max_results, 10_000, MAX_VERSIONS_PAGE)
    clauses = parse_filter(query.filter, VERSION_KEYS, "model versions")
    keep = matches(clauses)
    found = _all_versions(reg, exact_value(clauses, "name"), exact_value(clauses, "run_id"))
    ordered = sort_versions([v for v in found if keep(v)], query.order_by)
    page, token = _page(ordered, query.page_token, size, "model_versions")
    out: dict = {"model_versions": [model_version_json(v, uris) for v in page]}
    if token:
        out["next_page_token"] = token
    return out
