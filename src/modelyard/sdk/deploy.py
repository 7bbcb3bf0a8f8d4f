"""Deployments in the fluent API: ``my.create_deployment(...)``, ``my.start_canary(...)``,
``my.log_feedback(...)``, ...

Each function is one call on the DeploymentService of the current store; the
gateway (``modelyard gateway NAME``) carries out what they store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.deploy.ab import ABReport
from modelyard.deploy.backends import open_deployments
from modelyard.deploy.entities import Deployment, Gates
from modelyard.deploy.service import DeploymentService
from modelyard.sdk import fluent

__all__ = [
    "ab_report",
    "create_deployment",
    "deployment_service",
    "get_deployment",
    "log_feedback",
    "predictions_root",
    "promote_deployment",
    "rollback_deployment",
    "start_ab_test",
    "start_bluegreen",
    "start_canary",
    "start_shadow",
]

_cache: dict[int, DeploymentService] = {}


def deployment_service() -> DeploymentService:
    """The deployment service of the current store (follows ``my.configure``)."""
    tracking = fluent.client()
    svc = _cache.get(id(tracking))
    if svc is None:
        _cache.clear()
        svc = _cache[id(tracking)] = open_deployments(tracking)
    return svc


def predictions_root() -> str:
    """Where gateways log predictions by default: ``<artifacts>/predictions``."""
    return fluent._current().settings.resolved_artifacts.rstrip("/") + "/predictions"


def create_deployment(
    name: str, model_uri: str | None = None, *, variants: Sequence[str] = ()
) -> Deployment:
    """Create deployment ``name`` serving ``model_uri`` (or ``NAME=URI:WEIGHT`` variants)."""
    return deployment_service().create(name, model_uri, variants=variants)


def get_deployment(name: str) -> Deployment:
    return deployment_service().get(name)


def start_canary(
    name: str,
    candidate: str,
    *,
    steps: Sequence[float] = (5, 25, 50, 100),
    step_seconds: float = 60.0,
    promote_alias: str | None = "production",
    **gates: Any,
) -> Deployment:
    """Canary ``candidate`` through ``steps``; ``gates`` are ``Gates`` fields
    (min_requests, max_error_rate, max_p99_ms, max_latency_ratio,
    max_prediction_drift, max_feedback_drop, min_feedback)."""
    return deployment_service().canary(
        name,
        candidate,
        steps=steps,
        step_seconds=step_seconds,
        gates=Gates(**gates),
        promote_alias=promote_alias,
    )


def start_bluegreen(name: str, green: str, **kw: Any) -> Deployment:
    """Blue-green switch to ``green`` (smoke_inputs, tolerance, keep_previous_seconds)."""
    return deployment_service().bluegreen(name, green, **kw)


def start_shadow(name: str, candidate: str, *, share: float = 100.0) -> Deployment:
    return deployment_service().shadow(name, candidate, share=share)


def start_ab_test(
    name: str,
    variants: Mapping[str, tuple[str, float]] | Sequence[str],
    *,
    key_header: str | None = None,
    key_field: str | None = None,
) -> Deployment:
    """An A/B test: ``{"a": ("models:/churn/1", 50), "b": ("models:/churn/2", 50)}``
    or ``["a=models:/churn/1:50", ...]``."""
    if isinstance(variants, Mapping):
        variants = [f"{k}={uri}:{weight}" for k, (uri, weight) in variants.items()]
    return deployment_service().ab(name, variants, key_header=key_header, key_field=key_field)


def promote_deployment(name: str, variant: str | None = None, reason: str | None = None):
    return deployment_service().promote(name, variant, reason)


def rollback_deployment(name: str, reason: str | None = None) -> Deployment:
    return deployment_service().rollback(name, reason)


def ab_report(name: str, **kw: Any) -> ABReport:
    return deployment_service().ab_report(name, **kw)


def log_feedback(
    request_id: str,
    *,
    label: Any = None,
    reward: float | None = None,
    predictions: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Record the outcome of the answered request ``request_id`` (its
    ``x-request-id``): a ``label`` (ground truth) or a ``reward``. Joined to the
    logged prediction under ``predictions`` (default ``predictions_root()``),
    searching only ``model``'s log when given; an unknown request id raises
    ResourceNotFound and stores nothing."""
    from modelyard.serving.prediction_log import find_prediction

    root = predictions or predictions_root()
    return deployment_service().log_feedback(
        request_id,
        label=label,
        reward=reward,
        lookup=lambda rid: find_prediction(root, rid, model),
    )
