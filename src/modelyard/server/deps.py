"""FastAPI dependencies: hand the app's resources to handlers instead of globals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelyard.core.artifacts import ArtifactStore
from modelyard.tracking.service import TrackingService

__all__ = ["Artifacts", "Tracking"]


def get_tracking(request: Request) -> TrackingService:
    return request.app.state.tracking


def get_artifacts(request: Request) -> ArtifactStore:
    return request.app.state.artifacts


Tracking = Annotated[TrackingService, Depends(get_tracking)]
Artifacts = Annotated[ArtifactStore, Depends(get_artifacts)]
