"""The deployment service beside a tracking service (the same database)."""

from __future__ import annotations

from modelyard.core.errors import InvalidParameter
from modelyard.deploy.service import DeploymentService
from modelyard.deploy.sql_store import SqlDeploymentStore
from modelyard.tracking.service import TrackingService
from modelyard.tracking.sql_store import SqlTrackingStore

__all__ = ["open_deployments"]


def open_deployments(tracking: TrackingService, actor: str | None = None) -> DeploymentService:
    """Deployments live in the metadata database: the gateway reads and writes it
    directly, so a store reached over HTTP cannot hold them (point MODELYARD_DB_URL
    at the database instead)."""
    from modelyard.registry.backends import open_registry

    store = tracking.store
    if not isinstance(store, SqlTrackingStore):
        raise InvalidParameter(
            "Deployments need the metadata database itself (MODELYARD_DB_URL), not a "
            f"tracking server ({type(store).__name__})"
        )
    return DeploymentService(
        SqlDeploymentStore(store.engine, actor=actor or store.actor),
        open_registry(tracking, actor),
    )
