"""FastAPI dependencies: hand the app's resources to handlers instead of globals."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Header, Request

from modelyard.core.artifacts import ArtifactStore
from modelyard.deploy.service import DeploymentService
from modelyard.deploy.sql_store import SqlDeploymentStore
from modelyard.registry.service import RegistryService
from modelyard.registry.sql_store import SqlRegistryStore
from modelyard.tracking.service import TrackingService

__all__ = [
    "ANONYMOUS",
    "USER_HEADER",
    "Artifacts",
    "Deployments",
    "Registry",
    "Tracking",
    "request_actor",
]

USER_HEADER = "X-Modelyard-User"
ANONYMOUS = "anonymous"
_MAX_ACTOR = 256  # the width of the audit log's actor column


def get_tracking(request: Request) -> TrackingService:
    return request.app.state.tracking


def get_artifacts(request: Request) -> ArtifactStore:
    return request.app.state.artifacts


def request_actor(header: str | None) -> str:
    """Who the audit log names for a request: the ``X-Modelyard-User`` header
    (percent-decoded, so clients can send any user name in ASCII) or "anonymous".

    There is no authentication yet: the header is a claim, not a proof."""
    if not header:
        return ANONYMOUS
    name = "".join(ch for ch in unquote(header).strip() if ch.isprintable())
    return name[:_MAX_ACTOR] or ANONYMOUS


def get_registry(
    request: Request,
    x_modelyard_user: Annotated[str | None, Header(alias=USER_HEADER)] = None,
) -> RegistryService:
    """The registry as the caller: a view of the app's registry whose store records
    the request's actor (a store is a few attributes over the shared engine)."""
    base: RegistryService = request.app.state.registry
    store = base.store
    view = SqlRegistryStore(
        store.engine,
        actor=request_actor(x_modelyard_user),
        retries=store.retries,
        retry_backoff=store.retry_backoff,
    )
    return RegistryService(view, base.tracking)


def get_deployments(
    request: Request, registry: Annotated[RegistryService, Depends(get_registry)]
) -> DeploymentService:
    """The deployment service as the caller: its store records the request's actor,
    and its registry (which promotions give aliases through) is the caller's too."""
    base: DeploymentService = request.app.state.deployments
    store = base.store
    view = SqlDeploymentStore(
        store.engine,
        actor=registry.store.actor,
        retries=store.retries,
        retry_backoff=store.retry_backoff,
    )
    return DeploymentService(view, registry)


Tracking = Annotated[TrackingService, Depends(get_tracking)]
Artifacts = Annotated[ArtifactStore, Depends(get_artifacts)]
Registry = Annotated[RegistryService, Depends(get_registry)]
Deployments = Annotated[DeploymentService, Depends(get_deployments)]
