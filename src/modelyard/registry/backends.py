"""The registry service for a tracking service: local stores share its database."""

from __future__ import annotations

from modelyard.core.errors import InvalidParameter
from modelyard.registry.service import RegistryService
from modelyard.registry.sql_store import SqlRegistryStore
from modelyard.tracking.service import TrackingService
from modelyard.tracking.sql_store import SqlTrackingStore

__all__ = ["open_registry"]


def open_registry(tracking: TrackingService, actor: str | None = None) -> RegistryService:
    """The registry beside ``tracking``: on the same database for a local store."""
    store = tracking.store
    if isinstance(store, SqlTrackingStore):
        return RegistryService(SqlRegistryStore(store.engine, actor=actor or store.actor), tracking)
    from modelyard.registry.rest_store import RestRegistryStore  # the HTTP client

    if hasattr(store, "http"):
        return RegistryService(RestRegistryStore(store), tracking)  # type: ignore[arg-type]
    raise InvalidParameter(f"No model registry for a {type(store).__name__}")
