"""The monitoring service beside a tracking service (the same database and store)."""

from __future__ import annotations

from modelyard.core.errors import InvalidParameter
from modelyard.monitor.service import MonitorService
from modelyard.monitor.sql_store import SqlMonitorStore
from modelyard.tracking.service import TrackingService
from modelyard.tracking.sql_store import SqlTrackingStore

__all__ = ["open_monitor"]


def open_monitor(tracking: TrackingService, artifacts_root: str) -> MonitorService:
    """Alerts and labels live in the metadata database, baselines and the prediction
    log under ``artifacts_root`` (``<root>/monitoring``, ``<root>/predictions``)."""
    from modelyard.core.artifacts import open_artifact_store
    from modelyard.registry.backends import open_registry

    store = tracking.store
    if not isinstance(store, SqlTrackingStore):
        raise InvalidParameter(
            "Monitoring needs the metadata database itself (MODELYARD_DB_URL), not a "
            f"tracking server ({type(store).__name__})"
        )
    root = artifacts_root.rstrip("/")
    return MonitorService(
        open_artifact_store(root),
        f"{root}/predictions",
        SqlMonitorStore(store.engine),
        open_registry(tracking),
    )
