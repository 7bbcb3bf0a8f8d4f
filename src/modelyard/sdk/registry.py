"""The registry in the fluent API: `my.register_model(...)`, `my.set_alias(...)`, ...

Every function is one call on the RegistryService beside the fluent API's tracking
service (the same database locally; the same server remotely).
"""

from __future__ import annotations

from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.models import logging as model_logging
from modelyard.models.loader import register_scheme
from modelyard.registry.backends import open_registry
from modelyard.registry.entities import (
    Approval,
    ApprovalPolicy,
    Assignment,
    ModelVersion,
    RegisteredModel,
)
from modelyard.registry.service import RegistryService
from modelyard.sdk import fluent

__all__ = [
    "approve",
    "delete_model_version",
    "get_model_version",
    "get_registered_model",
    "model_card",
    "model_history",
    "model_registry",
    "register_model",
    "reject",
    "rollback",
    "set_alias",
    "set_policy",
    "transition_stage",
]

_cache: dict[int, RegistryService] = {}


def model_registry() -> RegistryService:
    """The registry service of the current store (follows `my.configure`)."""
    tracking = fluent.client()
    svc = _cache.get(id(tracking))
    if svc is None or svc.tracking is not tracking:
        _cache.clear()
        svc = _cache[id(tracking)] = open_registry(tracking)
    return svc


def register_model(
    model_uri: str,
    name: str,
    *,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    baseline_data: Any = None,
    target: str | None = None,
    task: str = "classification",
) -> ModelVersion:
    """Register the model package at ``model_uri`` (``runs:/<run_id>/model``, a path or
    a storage URL) as the next version of ``name``. With ``baseline_data`` (its
    training or validation data, a DataFrame or file) the version's monitoring
    baseline is stored too (see ``my.set_baseline``)."""
    fluent.flush()
    version = model_registry().register_model(model_uri, name, description=description, tags=tags)
    if baseline_data is not None:
        from modelyard.sdk.monitor import set_baseline

        set_baseline(
            f"models:/{version.name}/{version.version}", baseline_data, target=target, task=task
        )
    return version


def get_registered_model(name: str) -> RegisteredModel:
    return model_registry().get_registered_model(name)


def get_model_version(name: str, version: int | str) -> ModelVersion:
    return model_registry().get_model_version(name, version)


def delete_model_version(name: str, version: int | str) -> list[str]:
    """Delete a version; returns the aliases that pointed at it (removed with it)."""
    return model_registry().delete_model_version(name, version)


def set_alias(name: str, alias: str, version: int | str, reason: str | None = None) -> ModelVersion:
    """Point ``alias`` at ``version`` (refused when the model's policy is not met)."""
    return model_registry().set_alias(name, alias, version, reason)


def transition_stage(
    name: str,
    version: int | str,
    stage: str,
    *,
    archive_existing: bool = False,
    reason: str | None = None,
) -> ModelVersion:
    return model_registry().transition_stage(
        name, version, stage, archive_existing=archive_existing, reason=reason
    )


def set_policy(
    name: str,
    *,
    required_approvals: int = 0,
    metric_floors: dict[str, float] | None = None,
    protected: list[str] | None = None,
) -> ApprovalPolicy:
    """What a version needs before it may take a protected alias or stage
    (default protected: the ``production`` alias and the ``Production`` stage)."""
    return model_registry().set_policy(
        name,
        required_approvals=required_approvals,
        metric_floors=metric_floors,
        protected=protected,
    )


def approve(name: str, version: int | str, reason: str | None = None) -> Approval:
    return model_registry().approve(name, version, reason)


def reject(name: str, version: int | str, reason: str | None = None) -> Approval:
    return model_registry().reject(name, version, reason)


def model_history(
    name: str, alias: str | None = None, stage: str | None = None
) -> list[Assignment]:
    """Which version held which alias or stage, from when to when."""
    return model_registry().history(name, alias=alias, stage=stage)


def rollback(name: str, alias: str = "production", reason: str | None = None) -> ModelVersion:
    """Give ``alias`` back to the version that held it before the current one."""
    return model_registry().rollback(name, alias, reason)


def model_card(
    name: str,
    version: int | str,
    *,
    format: str = "markdown",
    purpose: str | None = None,
    limitations: str | None = None,
) -> str:
    """The model card of a version as Markdown or a self-contained HTML page."""
    from modelyard.registry.card import build_card, render_card

    if format not in ("markdown", "html"):
        raise InvalidParameter(f"format must be 'markdown' or 'html', got {format!r}")
    card = build_card(model_registry(), name, version, purpose=purpose, limitations=limitations)
    return render_card(card, format)


def _resolve_models_uri(uri: str) -> str:
    """Where the package of a ``models:/`` URI lives, for the model loader."""
    version = model_registry().resolve(uri)
    return version.source if version.source.startswith("runs:/") else version.artifact_uri


def _register_logged_model(name: str, info: Any) -> ModelVersion:
    """`log_model(..., registered_model_name=...)`: register what was just logged."""
    return model_registry().register_model(info.model_uri, name)


def install() -> None:
    """Plug the registry into the model loader (``models:/`` URIs) and into
    ``log_model(registered_model_name=...)``; the loader calls this on first need."""
    register_scheme("models", _resolve_models_uri)
    model_logging.REGISTER_HOOK = _register_logged_model


install()
