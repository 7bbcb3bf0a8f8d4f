"""The data service for a set of settings: the project folder, the cache under
``$MODELYARD_HOME/data``, the metadata database and the artifact store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from modelyard.core.config import Settings
from modelyard.core.errors import InvalidParameter
from modelyard.datasets.cache import ObjectCache
from modelyard.datasets.service import Catalog, DataService
from modelyard.datasets.sql_store import SqlDatasetStore
from modelyard.datasets.state import StatCache
from modelyard.datasets.workspace import Workspace, find_root
from modelyard.tracking.service import TrackingService
from modelyard.tracking.sql_store import SqlTrackingStore

__all__ = ["open_data", "open_workspace"]


def open_workspace(settings: Settings, root: Path | None = None) -> Workspace:
    """Pointer files under the repository root, objects in the settings' data cache."""
    links = [k.strip() for k in settings.data_link.split(",") if k.strip()]
    cache = ObjectCache(settings.data_cache, links)
    state = StatCache(settings.data_cache.parent / "state.db")
    return Workspace(root or find_root(), cache, state)


def open_data(settings: Settings, tracking: Callable[[], TrackingService]) -> DataService:
    """The data service; ``tracking`` is called (and the database opened) only when a
    command needs the registry."""

    def catalog() -> Catalog:
        from modelyard.core.artifacts import open_artifact_store
        from modelyard.registry.backends import open_registry

        service = tracking()
        store = service.store
        if not isinstance(store, SqlTrackingStore):
            raise InvalidParameter(
                "The dataset registry needs the metadata database itself (MODELYARD_DB_URL), "
                f"not a tracking server ({type(store).__name__})"
            )
        return Catalog(
            SqlDatasetStore(store.engine),
            open_artifact_store(settings.resolved_artifacts),
            open_registry(service),
        )

    return DataService(open_workspace(settings), catalog, settings.data_remote)
