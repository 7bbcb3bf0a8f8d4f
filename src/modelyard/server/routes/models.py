"""Native API: the model registry (``/api/v1/models``). Each handler is one registry
service call, made as the caller named by the ``X-Modelyard-User`` header.

Model names may hold spaces and dots: send them percent-encoded in the path. A
``-`` in place of the name lists versions across every model (``-`` is no valid
model name). ``/api/v1/models/resolve`` is the resolver, so a model literally named
"resolve" is read through search or its sub-resources.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from modelyard.registry.entities import ModelVersion, RegisteredModel
from modelyard.server.artifact_uris import ArtifactUris, Uris
from modelyard.server.deps import Registry
from modelyard.server.registry_schemas import (
    AliasRequest,
    ApprovalOut,
    ApprovalPage,
    ApprovalRequest,
    AuditLog,
    CreateModelRequest,
    DeletedVersion,
    History,
    ModelPage,
    ModelVersionOut,
    PolicyOut,
    PolicyRequest,
    RegisteredModelOut,
    RegisterVersionRequest,
    RollbackRequest,
    StageRequest,
    UpdateModelRequest,
    UpdateVersionRequest,
    VersionAt,
    VersionPage,
)
from modelyard.server.responses import FastJSONResponse
from modelyard.server.schemas import ERROR_RESPONSES, ApiError, Empty, JSONRoute, SetTagRequest

__all__ = ["router", "version_json"]

ALL_MODELS = "-"

router = APIRouter(
    prefix="/models",
    tags=["models"],
    route_class=JSONRoute,
    responses={
        **ERROR_RESPONSES,
        409: {
            "model": ApiError,
            "description": "INVALID_STATE: the model's approval policy refuses the promotion; "
            "the message names what is missing.",
        },
    },
)


def version_json(v: ModelVersion, uris: ArtifactUris) -> dict:
    """A version as the native API answers it: locations under the server's artifact
    root as ``mlflow-artifacts:/`` URIs, readable through the artifact proxy."""
    out = v.to_dict()
    out["artifact_uri"] = uris.to_mlflow(v.artifact_uri)
    out["source"] = uris.to_mlflow(v.source)
    return out


def _model_json(m: RegisteredModel, uris: ArtifactUris) -> dict:
    out = m.to_dict()
    out["latest_versions"] = [version_json(v, uris) for v in m.latest_versions]
    return out


def _version(v: ModelVersion, uris: ArtifactUris) -> Response:
    return FastJSONResponse(version_json(v, uris))


# -- registered models -----------------------------------------------------------


@router.post(
    "",
    response_model=RegisteredModelOut,
    summary="Create a registered model",
    description="400 RESOURCE_ALREADY_EXISTS when the name is taken.",
)
def create_model(body: CreateModelRequest, reg: Registry, uris: Uris) -> Response:
    model = reg.create_registered_model(body.name, body.description, body.tags)
    return FastJSONResponse(_model_json(model, uris))


@router.get(
    "",
    response_model=ModelPage,
    summary="List registered models",
    description="Models in name order. `name_like` is a SQL LIKE pattern (`%` any run of "
    "characters, `_` one character).",
)
def search_models(
    reg: Registry,
    uris: Uris,
    name_like: str | None = None,
    max_results: Annotated[int, Query(ge=1, le=50_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    models, more = reg.search_registered_models(name_like, max_results, offset)
    return FastJSONResponse({"models": [_model_json(m, uris) for m in models], "has_more": more})


@router.get(
    "/resolve",
    response_model=ModelVersionOut,
    summary="Resolve a models:/ URI",
    description="The version `models:/<name>/<version>`, `models:/<name>@<alias>` or "
    "`models:/<name>/<stage>` names.",
)
def resolve(uri: str, reg: Registry, uris: Uris) -> Response:
    return _version(reg.resolve(uri), uris)


@router.get(
    "/{name}",
    response_model=RegisteredModelOut,
    summary="Get a registered model",
    description="With its tags, aliases and the newest version of each stage.",
)
def get_model(name: str, reg: Registry, uris: Uris) -> Response:
    return FastJSONResponse(_model_json(reg.get_registered_model(name), uris))


@router.patch(
    "/{name}",
    response_model=RegisteredModelOut,
    summary="Describe or rename a registered model",
    description="`new_name` renames (versions, aliases and history follow), then "
    "`description` is set. Returns the model afterwards.",
)
def update_model(name: str, body: UpdateModelRequest, reg: Registry, uris: Uris) -> Response:
    model = None
    if body.new_name is not None:
        model = reg.rename_registered_model(name, body.new_name)
        name = model.name
    if body.description is not None:
        model = reg.update_registered_model(name, body.description)
    return FastJSONResponse(_model_json(model or reg.get_registered_model(name), uris))


@router.delete(
    "/{name}",
    response_model=Empty,
    summary="Delete a registered model",
    description="With its versions, aliases, tags, policy and approvals; its history "
    "periods are closed and the audit log keeps the deletion.",
)
def delete_model(name: str, reg: Registry) -> Response:
    reg.delete_registered_model(name)
    return FastJSONResponse({})


@router.put(
    "/{name}/tags/{key:path}",
    response_model=Empty,
    summary="Set a model tag",
    description="Creates the tag or overwrites its value.",
)
def set_model_tag(name: str, key: str, body: SetTagRequest, reg: Registry) -> Response:
    reg.set_registered_model_tag(name, key, body.value)
    return FastJSONResponse({})


@router.delete(
    "/{name}/tags/{key:path}",
    response_model=Empty,
    summary="Delete a model tag",
    description="Deleting a tag the model does not have is not an error.",
)
def delete_model_tag(name: str, key: str, reg: Registry) -> Response:
    reg.set_registered_model_tag(name, key, None)
    return FastJSONResponse({})


# -- versions --------------------------------------------------------------------


@router.post(
    "/{name}/versions",
    response_model=ModelVersionOut,
    summary="Register a model version",
    description="The next version of `name` (created on first use) from the model package "
    "at `source`; the source run's metrics, dataset lineage and the package's flavor and "
    "signature are snapshotted into it. 400 names the missing manifest when `source` holds "
    "no model.",
)
def register_version(
    name: str, body: RegisterVersionRequest, reg: Registry, uris: Uris
) -> Response:
    version = reg.register_model(
        uris.from_mlflow(body.source) or body.source,
        name,
        description=body.description,
        tags=body.tags,
        require_package=body.require_package,
    )
    return _version(version, uris)


@router.get(
    "/{name}/versions",
    response_model=VersionPage,
    summary="List versions",
    description="Newest first. `-` as the name lists every model's versions (with "
    "`run_id`: the versions registered from that run).",
)
def search_versions(
    name: str,
    reg: Registry,
    uris: Uris,
    run_id: str | None = None,
    max_results: Annotated[int, Query(ge=1, le=50_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    versions, more = reg.search_model_versions(
        None if name == ALL_MODELS else name, run_id, max_results, offset
    )
    return FastJSONResponse(
        {"versions": [version_json(v, uris) for v in versions], "has_more": more}
    )


@router.get(
    "/{name}/versions/{version}",
    response_model=ModelVersionOut,
    summary="Get a version",
    description="With its run snapshot, tags and aliases. 404 for an unknown model or version.",
)
def get_version(name: str, version: str, reg: Registry, uris: Uris) -> Response:
    return _version(reg.get_model_version(name, version), uris)


@router.patch(
    "/{name}/versions/{version}",
    response_model=ModelVersionOut,
    summary="Describe a version",
    description="Sets the description; returns the version afterwards.",
)
def update_version(
    name: str, version: str, body: UpdateVersionRequest, reg: Registry, uris: Uris
) -> Response:
    return _version(reg.update_model_version(name, version, body.description), uris)


@router.delete(
    "/{name}/versions/{version}",
    response_model=DeletedVersion,
    summary="Delete a version",
    description="The aliases pointing at it are removed with it (and returned); its "
    "number is never reused.",
)
def delete_version(name: str, version: str, reg: Registry) -> Response:
    return FastJSONResponse({"aliases": reg.delete_model_version(name, version)})


@router.put(
    "/{name}/versions/{version}/tags/{key:path}",
    response_model=Empty,
    summary="Set a version tag",
    description="Creates the tag or overwrites its value.",
)
def set_version_tag(
    name: str, version: str, key: str, body: SetTagRequest, reg: Registry
) -> Response:
    reg.set_model_version_tag(name, version, key, body.value)
    return FastJSONResponse({})


@router.delete(
    "/{name}/versions/{version}/tags/{key:path}",
    response_model=Empty,
    summary="Delete a version tag",
    description="Deleting a tag the version does not have is not an error.",
)
def delete_version_tag(name: str, version: str, key: str, reg: Registry) -> Response:
    reg.set_model_version_tag(name, version, key, None)
    return FastJSONResponse({})


@router.post(
    "/{name}/versions/{version}/stage",
    response_model=ModelVersionOut,
    summary="Move a version to a stage",
    description="`archive_existing` archives the versions already in Staging or "
    "Production. 409 when the policy protects the stage and the version does not meet it.",
)
def transition_stage(
    name: str, version: str, body: StageRequest, reg: Registry, uris: Uris
) -> Response:
    moved = reg.transition_stage(
        name, version, body.stage, archive_existing=body.archive_existing, reason=body.reason
    )
    return _version(moved, uris)


# -- approvals and policy --------------------------------------------------------


@router.post(
    "/{name}/versions/{version}/approvals",
    response_model=ApprovalOut,
    summary="Approve or reject a version",
    description="Recorded with the caller (X-Modelyard-User) and the reason; a caller's "
    "latest decision is the one that counts.",
)
def decide(name: str, version: str, body: ApprovalRequest, reg: Registry) -> Response:
    record = reg.approve if body.decision == "approved" else reg.reject
    return FastJSONResponse(record(name, version, body.reason).to_dict())


@router.get(
    "/{name}/versions/{version}/approvals",
    response_model=ApprovalPage,
    summary="A version's approvals",
    description="Every decision on the version, oldest first.",
)
def version_approvals(name: str, version: str, reg: Registry) -> Response:
    return FastJSONResponse({"approvals": [a.to_dict() for a in reg.approvals(name, version)]})


@router.get(
    "/{name}/approvals",
    response_model=ApprovalPage,
    summary="All approvals of a model",
    description="Every decision on any version of the model, oldest first.",
)
def model_approvals(name: str, reg: Registry) -> Response:
    return FastJSONResponse({"approvals": [a.to_dict() for a in reg.approvals(name)]})


@router.put(
    "/{name}/policy",
    response_model=PolicyOut,
    summary="Set the approval policy",
    description="What a version needs before it takes a protected alias or stage.",
)
def set_policy(name: str, body: PolicyRequest, reg: Registry) -> Response:
    policy = reg.set_policy(
        name,
        required_approvals=body.required_approvals,
        metric_floors=body.metric_floors,
        protected=body.protected,
    )
    return FastJSONResponse(policy.to_dict())


@router.get(
    "/{name}/policy",
    response_model=PolicyOut | None,
    summary="Get the approval policy",
    description="null when the model has none.",
)
def get_policy(name: str, reg: Registry) -> Response:
    policy = reg.get_policy(name)
    return FastJSONResponse(None if policy is None else policy.to_dict())


# -- aliases and history ---------------------------------------------------------


@router.put(
    "/{name}/aliases/{alias}",
    response_model=ModelVersionOut,
    summary="Point an alias at a version",
    description="404 when the version does not exist; 409 when the policy protects the "
    "alias and the version does not meet it. Returns the version.",
)
def set_alias(name: str, alias: str, body: AliasRequest, reg: Registry, uris: Uris) -> Response:
    return _version(reg.set_alias(name, alias, body.version, body.reason), uris)


@router.get(
    "/{name}/aliases/{alias}",
    response_model=ModelVersionOut,
    summary="The version of an alias",
    description="404 when the model has no such alias.",
)
def get_alias(name: str, alias: str, reg: Registry, uris: Uris) -> Response:
    return _version(reg.get_version_by_alias(name, alias), uris)


@router.delete(
    "/{name}/aliases/{alias}",
    response_model=Empty,
    summary="Delete an alias",
    description="Closes its history period. 404 when the model has no such alias.",
)
def delete_alias(name: str, alias: str, reg: Registry) -> Response:
    reg.delete_alias(name, alias)
    return FastJSONResponse({})


@router.get(
    "/{name}/aliases/{alias}/at",
    response_model=VersionAt,
    summary="Which version held an alias at a time",
    description="`time_ms`: UTC milliseconds ('what was serving last Tuesday').",
)
def version_at(name: str, alias: str, time_ms: int, reg: Registry) -> Response:
    return FastJSONResponse({"version": reg.version_at(name, alias, time_ms)})


@router.post(
    "/{name}/aliases/{alias}/rollback",
    response_model=ModelVersionOut,
    summary="Roll an alias back",
    description="Gives the alias back to the version that held it before the current one "
    "(skipping deleted versions). The policy still applies.",
)
def rollback(
    name: str, alias: str, reg: Registry, uris: Uris, body: RollbackRequest | None = None
) -> Response:
    return _version(reg.rollback(name, alias, body.reason if body else None), uris)


@router.get(
    "/{name}/history",
    response_model=History,
    summary="Alias and stage history",
    description="Every period a version held an alias or a stage, oldest first; narrowed "
    "to one `alias` or one `stage` when given.",
)
def history(
    name: str, reg: Registry, alias: str | None = None, stage: str | None = None
) -> Response:
    periods = reg.history(name, alias=alias, stage=stage)
    return FastJSONResponse({"history": [p.to_dict() for p in periods]})


@router.get(
    "/{name}/audit",
    response_model=AuditLog,
    summary="The model's audit log",
    description="Every change to the model and its versions: who, what, when, before and "
    "after, oldest first.",
)
def audit(name: str, reg: Registry) -> Response:
    events = [{str(k): v for k, v in e.items()} for e in reg.audit(name)]  # plain-str keys
    return FastJSONResponse({"events": events})
