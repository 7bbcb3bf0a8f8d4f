"""Model cards and evaluation gates over HTTP: the same service calls as
`modelyard models card` and `modelyard check`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from modelyard.registry.card import build_card, render_card
from modelyard.server.deps import Registry
from modelyard.server.responses import FastJSONResponse

__all__ = ["router"]

router = APIRouter(tags=["models"])


@router.get(
    "/models/{name}/versions/{version}/card",
    summary="The model card of a version",
    description="Markdown (default) or a self-contained HTML page: purpose, limitations, "
    "training data, params, metrics, signature, feature importance, lineage, approvals.",
)
def model_card(
    name: str,
    version: str,
    reg: Registry,
    format: Annotated[Literal["markdown", "html"], Query()] = "markdown",
    purpose: str | None = None,
    limitations: str | None = None,
) -> Response:
    card = build_card(reg, name, version, purpose=purpose, limitations=limitations)
    media = "text/html" if format == "html" else "text/markdown"
    return Response(render_card(card, format), media_type=f"{media}; charset=utf-8")


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidate: str = Field(description="Model URI of the candidate.", examples=["models:/churn/7"])
    champion: str | None = Field(None, examples=["models:/churn@champion"])
    data: str = Field(description="A .parquet or .csv file the server can read (path or URL).")
    target: str = Field(description="The label column.")
    task: Literal["classification", "regression"] = "classification"
    min: dict[str, float] = Field(default_factory=dict, examples=[{"accuracy": 0.8}])
    max: dict[str, float] = Field(default_factory=dict, examples=[{"rmse": 3.0}])
    max_regression: dict[str, float] = Field(default_factory=dict, examples=[{"f1": 0.01}])


@router.post(
    "/models/check",
    summary="Evaluate a candidate (and the champion) and apply gates",
    description="Returns the verdict (`passed`), each gate, and both evaluations. "
    "The data must be readable by the server.",
)
async def check_gates(body: CheckRequest) -> Response:
    from modelyard.evaluation import check

    verdict = await run_in_threadpool(
        check,
        body.candidate,
        body.data,
        body.target,
        champion=body.champion,
        task=body.task,
        min_values=body.min,
        max_values=body.max,
        max_regression=body.max_regression,
    )
    return FastJSONResponse(verdict.to_dict())
