"""Pick the tracking backend from the settings, by URI scheme: the SQL store for a
database URL, the REST store for an ``http(s)://`` tracking server."""

from __future__ import annotations

from collections.abc import Callable

from modelyard.core.artifacts import open_artifact_store
from modelyard.core.config import Settings
from modelyard.core.errors import InvalidParameter
from modelyard.tracking.service import TrackingService

__all__ = ["open_tracking"]


def _local(settings: Settings) -> TrackingService:
    from modelyard.core.store.engine import open_engine
    from modelyard.tracking.sql_store import SqlTrackingStore

    store = SqlTrackingStore(open_engine(settings.resolved_db_url), settings.resolved_artifacts)
    return TrackingService(store, open_artifact_store)


def _remote(settings: Settings) -> TrackingService:
    from modelyard.tracking.rest_store import HttpArtifactAccess, RestTrackingStore

    assert settings.tracking_uri is not None
    store = RestTrackingStore(settings.tracking_uri, spill_dir=settings.home / "spill")
    return TrackingService(store, lambda uri: HttpArtifactAccess(store.http, uri))


_BACKENDS: dict[str, Callable[[Settings], TrackingService]] = {
    "": _local,
    "http": _remote,
    "https": _remote,
}


def open_tracking(settings: Settings) -> TrackingService:
    """The tracking service for these settings (local store unless a server is named)."""
    scheme = (settings.tracking_uri or "").split("://", 1)[0] if settings.tracking_uri else ""
    try:
        factory = _BACKENDS[scheme]
    except KeyError:
        raise InvalidParameter(
            f"Unsupported MODELYARD_TRACKING_URI {settings.tracking_uri!r}: leave it unset for "
            "the local store or give http(s)://host:port of a modelyard server"
        ) from None
    return factory(settings)
