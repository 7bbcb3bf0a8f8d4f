"""Native API: deployments and their rollouts (``/api/v1/deployments``). Each handler
is one deployment service call, made as the caller named by the ``X-Modelyard-User``
header; the gateway (``modelyard gateway NAME``) carries out what they store.

Request bodies refuse unknown fields (400), and options a body leaves out take the
service's defaults, so the API, the SDK and the CLI start the same rollout.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from modelyard.core.errors import InvalidState
from modelyard.deploy.entities import Deployment, Gates
from modelyard.server.deps import Deployments
from modelyard.server.responses import FastJSONResponse
from modelyard.server.schemas import ERROR_RESPONSES, ApiError, Empty, JSONRoute

__all__ = [
    "ABRequest",
    "BlueGreenRequest",
    "CanaryRequest",
    "CreateDeploymentRequest",
    "GatesRequest",
    "PromoteRequest",
    "RollbackRequest",
    "ShadowRequest",
    "router",
]

router = APIRouter(
    prefix="/deployments",
    tags=["deployments"],
    route_class=JSONRoute,
    responses={
        **ERROR_RESPONSES,
        409: {
            "model": ApiError,
            "description": "INVALID_STATE: the model's approval policy would refuse the "
            "promotion at the end of the rollout; the message names what is missing.",
        },
    },
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def given(self, *skip: str) -> dict[str, Any]:
        """The fields the client sent (null included), as service keyword arguments:
        what it left out keeps the service's default."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if k not in skip}


class CreateDeploymentRequest(_Body):
    name: str = Field(
        description="Letters, digits, '_', '-', '.' (at most 128).", examples=["churn"]
    )
    model_uri: str | None = Field(
        None,
        description="The model serving 100% (models:/NAME/VERSION, models:/NAME@ALIAS or an "
        "upstream http(s):// server). Give this or variants.",
        examples=["models:/churn@production"],
    )
    variants: list[str] = Field(
        default_factory=list,
        description="Or NAME=URI:WEIGHT items, the weight in percent, summing to 100.",
        examples=[["a=models:/churn/1:90", "b=models:/churn/2:10"]],
    )


class GatesRequest(_Body):
    """A canary step passes when the candidate has ``min_requests`` requests in the
    step's window and stays within every limit set (null switches a limit off)."""

    min_requests: int = Field(
        Gates.min_requests, description="Requests the candidate needs per step."
    )
    max_error_rate: float | None = Field(Gates.max_error_rate, description="Share of 5xx answers.")
    max_p99_ms: float | None = Field(None, description="Absolute p99 latency, ms.")
    max_latency_ratio: float | None = Field(None, description="Candidate p99 / stable p99.")
    max_prediction_drift: float | None = Field(
        None, description="PSI of the candidate's predictions against the stable's."
    )
    max_feedback_drop: float | None = Field(
        None, description="How far the candidate's mean outcome may fall below the stable's."
    )
    min_feedback: int = Field(
        Gates.min_feedback, description="Outcomes each side needs before that check."
    )


class CanaryRequest(_Body):
    candidate: str = Field(description="The model to roll out.", examples=["models:/churn/2"])
    steps: list[float] = Field(
        [5, 25, 50, 100], description="Increasing percentages; 100 is appended if missing."
    )
    step_seconds: float = Field(60.0, description="How long each step's window lasts.")
    gates: GatesRequest | None = Field(None, description="The default gates if unset.")
    promote_alias: str | None = Field(
        "production", description="The alias the candidate takes at 100%; null for none."
    )


class BlueGreenRequest(_Body):
    green: str = Field(description="The model to switch to.", examples=["models:/churn/2"])
    smoke_inputs: list[dict[str, Any]] | None = Field(
        None, description="Rows green must answer before the switch."
    )
    tolerance: float | None = Field(
        None, description="Largest difference from blue on the smoke inputs."
    )
    keep_previous_seconds: float = Field(
        300.0, description="How long blue stays loaded for an instant rollback."
    )
    promote_alias: str | None = Field("production", description="null for none.")


class ShadowRequest(_Body):
    candidate: str = Field(description="The model to mirror requests to.")
    share: float = Field(100.0, description="Percent of requests mirrored.")


class ABRequest(_Body):
    variants: list[str] = Field(
        description="NAME=URI:WEIGHT, the weight in percent; at least two, summing to 100.",
        examples=[["a=models:/churn/1:50", "b=models:/churn/2:50"]],
    )
    key_header: str | None = Field(
        None, description="The request header whose value always lands on the same variant."
    )
    key_field: str | None = Field(None, description="Or the input field that does.")


class PromoteRequest(_Body):
    variant: str | None = Field(
        None, description="The variant to promote; required for an A/B test."
    )
    reason: str | None = Field(None, description="Kept in the deployment's history.")


class RollbackRequest(_Body):
    reason: str | None = Field(None, description="Kept in the deployment's history.")


def _deployment(dep: Deployment) -> Response:
    return FastJSONResponse(dep.to_dict())


# -- deployments -----------------------------------------------------------------


@router.post(
    "",
    summary="Create a deployment",
    description="Of one model (100%) or of several variants. `models:/` URIs are resolved "
    "to exact versions now: 404 for an unknown one; 400 RESOURCE_ALREADY_EXISTS when the "
    "name is taken.",
)
def create(body: CreateDeploymentRequest, svc: Deployments) -> Response:
    return _deployment(svc.create(body.name, body.model_uri, variants=body.variants))


@router.get("", summary="List deployments", description="In name order.")
def list_deployments(svc: Deployments) -> Response:
    return FastJSONResponse({"deployments": [d.to_dict() for d in svc.list()]})


@router.get(
    "/{name}",
    summary="Get a deployment",
    description="Its variants and weights, the rollout, and the gateway's latest figures.",
)
def get(name: str, svc: Deployments) -> Response:
    return _deployment(svc.get(name))


@router.delete(
    "/{name}",
    response_model=Empty,
    summary="Delete a deployment",
    description="400 INVALID_STATE while a rollout runs: promote or roll it back first.",
)
def delete(name: str, svc: Deployments) -> Response:
    svc.delete(name)
    return FastJSONResponse({})


@router.get(
    "/{name}/history",
    summary="A deployment's history",
    description="Every change (created, rollout started, step, promoted, rolled back): "
    "who, what, when, the state before and after, and the reason; oldest first.",
)
def history(name: str, svc: Deployments) -> Response:
    events = [{str(k): v for k, v in e.items()} for e in svc.history(name)]  # plain-str keys
    return FastJSONResponse({"events": events})


# -- rollouts --------------------------------------------------------------------


@router.post(
    "/{name}/canary",
    summary="Start a canary",
    description="Traffic moves to the candidate step by step while the gates pass; a "
    "failing gate rolls it back. 400 INVALID_STATE when a rollout is already running.",
)
def canary(name: str, body: CanaryRequest, svc: Deployments) -> Response:
    options = body.given("candidate", "gates")
    if body.gates is not None:
        options["gates"] = Gates(**body.gates.given())
    return _deployment(svc.canary(name, body.candidate, **options))


@router.post(
    "/{name}/bluegreen",
    summary="Start a blue-green switch",
    description="Green is loaded beside blue, smoke-tested, then takes all traffic at once.",
)
def bluegreen(name: str, body: BlueGreenRequest, svc: Deployments) -> Response:
    return _deployment(svc.bluegreen(name, body.green, **body.given("green")))


@router.post(
    "/{name}/shadow",
    summary="Start a shadow rollout",
    description="A share of requests is mirrored to the candidate; users never see its "
    "answers. The comparison is in the report.",
)
def shadow(name: str, body: ShadowRequest, svc: Deployments) -> Response:
    return _deployment(svc.shadow(name, body.candidate, **body.given("candidate")))


@router.post(
    "/{name}/ab",
    summary="Start an A/B test",
    description="Requests are split among the variants by weight (the same key, header "
    "or field, always lands on the same variant); outcomes come through feedback.",
)
def ab(name: str, body: ABRequest, svc: Deployments) -> Response:
    return _deployment(svc.ab(name, body.variants, **body.given("variants")))


@router.post(
    "/{name}/promote",
    summary="Promote now",
    description="Ends the rollout with the candidate (or the named A/B variant) serving "
    "100%; it takes the rollout's alias unless the approval policy refuses (the rollout "
    "is then paused with the policy's reason).",
)
def promote(name: str, svc: Deployments, body: PromoteRequest | None = None) -> Response:
    body = body or PromoteRequest()
    return _deployment(svc.promote(name, body.variant, body.reason))


@router.post(
    "/{name}/rollback",
    summary="Roll back now",
    description="Back to the version that served before the rollout, at once.",
)
def rollback(name: str, svc: Deployments, body: RollbackRequest | None = None) -> Response:
    return _deployment(svc.rollback(name, body.reason if body else None))


@router.get(
    "/{name}/report",
    summary="The rollout's report",
    description="An A/B test: each variant's outcomes against the control and the verdict "
    "(`alpha`: significance level; `mde`: the smallest difference worth detecting). A "
    "shadow rollout: the gateway's latest comparison (null before it has one). 400 for "
    "any other deployment.",
)
def report(
    name: str,
    svc: Deployments,
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
    mde: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
) -> Response:
    dep = svc.get(name)
    r = dep.rollout
    if r is not None and r.strategy == "shadow":
        return FastJSONResponse({"shadow": (dep.live or {}).get("shadow")})
    if r is None or r.strategy != "ab":
        raise InvalidState(
            f"Deployment {name!r} has no A/B test or shadow rollout to report on "
            f"(its last rollout: {r.strategy if r else 'none'})"
        )
    options: dict[str, Any] = {"alpha": alpha}
    if mde is not None:
        options["min_detectable_effect"] = mde
    return FastJSONResponse(svc.ab_report(name, **options).to_dict())
