"""The one loader: ``load_model(uri)`` for every place a model package can live.

=============================  =====================================================
``/path/to/pkg``, ``file://``  loaded in place (copied first when ``dst`` is given)
``s3://...``, any fsspec URL   downloaded with the artifact store (hash-checked)
``runs:/<run_id>/<path>``      the run's artifacts, through the tracking service
``models:/<name>/<version>``,  resolved by the model registry, which registers a
``models:/<name>@<alias>``     resolver with ``register_scheme("models", ...)``
=============================  =====================================================

Remote packages are cached in ``$MODELYARD_HOME/cache/models/<sha256 of the
location>/``. Each load first reads the remote manifest (a few hundred bytes): when
the cached copy has the same manifest, it is used as it is; otherwise the package
is downloaded into a temporary sibling folder and swapped in, so a reader never sees
half a package. Since the manifest holds the hash of every file, the same manifest
means the same package, and loading re-hashes the cached files (a corrupted cache
is fetched again once).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from modelyard.core.artifacts import open_artifact_store
from modelyard.core.errors import (
    ArtifactIntegrityError,
    InvalidParameter,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from modelyard.models import package
from modelyard.models.manifest import MANIFEST_FILE
from modelyard.sdk import fluent
from modelyard.tracking.service import TrackingService

__all__ = ["download_model", "load_model", "register_scheme", "resolve_uri"]

Resolver = Callable[[str], str]
_resolvers: dict[str, Resolver] = {}
_MAX_HOPS = 8
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # 2+ chars: not a Windows drive


def register_scheme(scheme: str, resolver: Resolver | None) -> None:
    """Resolve ``<scheme>:...`` URIs with ``resolver(uri) -> location``, where the
    location is a ``runs:/`` URI, a storage URL or a local path (None removes it).

    The model registry registers ``models`` this way, so the loader needs no import
    of the registry."""
    if not _SCHEME_RE.match(f"{scheme}:") or scheme in ("runs", "file"):
        raise InvalidParameter(f"Cannot register a resolver for scheme {scheme!r}")
    if resolver is None:
        _resolvers.pop(scheme, None)
    else:
        _resolvers[scheme] = resolver


def _scheme(uri: str) -> str | None:
    m = _SCHEME_RE.match(uri)
    return m.group(1).lower() if m else None


def resolve_uri(uri: str) -> str:
    """Follow registered schemes (``models:/...``) until a location remains."""
    location = str(uri)
    for _ in range(_MAX_HOPS):
        scheme = _scheme(location)
        if scheme == "models" and scheme not in _resolvers:
            # The registry plugs itself in on import (like an entry point).
            importlib.import_module("modelyard.sdk.registry").install()
        if scheme not in _resolvers:
            if scheme == "models":
                raise InvalidParameter(
                    f"Cannot resolve {location!r}: models:/ URIs need the model registry "
                    "(modelyard.sdk.registry), which registers itself with "
                    "modelyard.models.loader.register_scheme('models', ...) when imported"
                )
            return location
        location = str(_resolvers[scheme](location))
    raise InvalidParameter(f"{uri!r} did not resolve within {_MAX_HOPS} steps (a loop?)")


class _Source(Protocol):
    def manifest(self) -> bytes: ...
    def download(self, dest: Path) -> None: ...


class _RunSource:
    def __init__(self, uri: str, tracking: TrackingService) -> None:
        rest = uri.split(":", 1)[1].lstrip("/")
        run_id, _, path = rest.partition("/")
        path = path.strip("/")
        if not run_id or not path:
            raise InvalidParameter(
                f"Invalid model URI {uri!r}: expected runs:/<run_id>/<artifact path>, "
                "e.g. runs:/4f0c.../model"
            )
        self.uri, self.tracking = uri, tracking
        self.run_id, self.path = tracking.resolve_run_id(run_id), path

    def manifest(self) -> bytes:
        try:
            return self.tracking.read_artifact(self.run_id, f"{self.path}/{MANIFEST_FILE}")
        except ResourceNotFound:
            raise ResourceNotFound(
                f"{self.uri!r} holds no model package: run {self.run_id} has no "
                f"{self.path}/{MANIFEST_FILE} (log one with my.log_model)"
            ) from None

    def download(self, dest: Path) -> None:
        self.tracking.download_artifacts(self.run_id, self.path, dest)


class _StoreSource:
    def __init__(self, url: str) -> None:
        self.url, self.store = url, open_artifact_store(url)

    def manifest(self) -> bytes:
        try:
            return self.store.read_bytes(MANIFEST_FILE)
        except ResourceNotFound:
            raise ResourceNotFound(
                f"{self.url!r} holds no model package (no {MANIFEST_FILE})"
            ) from None

    def download(self, dest: Path) -> None:
        self.store.get_dir("", dest)


class _LocalSource:
    def __init__(self, path: Path) -> None:
        self.path = path

    def manifest(self) -> bytes:
        return (self.path / MANIFEST_FILE).read_bytes()

    def download(self, dest: Path) -> None:
        shutil.copytree(self.path, dest, dirs_exist_ok=True)


def _local_path(location: str) -> Path:
    if _scheme(location) == "file":
        parsed = urlparse(location)
        return Path(unquote(parsed.netloc + parsed.path) if parsed.netloc else unquote(parsed.path))
    return Path(location).expanduser()


def _cache_dir(location: str) -> Path:
    home = Path(fluent._current().settings.home).expanduser().resolve()
    return home / "cache" / "models" / hashlib.sha256(location.encode()).hexdigest()[:32]


def _swap(tmp: Path, target: Path) -> None:
    """Move the complete download ``tmp`` to ``target``, replacing an older package."""
    trash = None
    if target.exists():
        if not (target / MANIFEST_FILE).is_file() and any(target.iterdir()):
            raise ResourceAlreadyExists(
                f"{str(target)!r} is not empty and holds no model package: give an empty "
                "or new folder as dst"
            )
        trash = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(target, trash)
        except FileNotFoundError:  # another loader moved it first
            trash = None
    try:
        os.rename(tmp, target)
    except OSError:  # another loader put the same package there meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)


def _fetch(source: _Source, target: Path, force: bool) -> tuple[Path, bool]:
    """``(folder, downloaded_now)``: the cached copy when its manifest is current."""
    remote = source.manifest()
    current = target / MANIFEST_FILE
    if not force and current.is_file() and current.read_bytes() == remote:
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.dl-", dir=target.parent))
    try:
        source.download(tmp)
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target, True


def _locate(
    uri: str, dst: str | os.PathLike | None, tracking: TrackingService | None, force: bool
) -> tuple[Path, bool]:
    location = resolve_uri(uri)
    scheme = _scheme(location)
    if scheme in (None, "file"):
        local = _local_path(location)
        if not (local / MANIFEST_FILE).is_file():
            raise ResourceNotFound(f"No model package at {str(local)!r} (no {MANIFEST_FILE} there)")
        if dst is None:
            return local, True
        source: _Source = _LocalSource(local)
    elif scheme == "runs":
        source = _RunSource(location, tracking or fluent.client())
        location = f"runs:/{source.run_id}/{source.path}"
    else:
        source = _StoreSource(location)
    target = Path(dst) if dst is not None else _cache_dir(location)
    return _fetch(source, target, force)


def download_model(
    uri: str, *, dst: str | os.PathLike | None = None, tracking: TrackingService | None = None
) -> Path:
    """The local folder holding the package at ``uri`` (fetched when remote)."""
    return _locate(uri, dst, tracking, force=False)[0]


def load_model(
    uri: str | os.PathLike,
    *,
    allow_pickle: bool = False,
    dst: str | os.PathLike | None = None,
    tracking: TrackingService | None = None,
) -> Any:
    """Load the model package at ``uri`` and return a ``LoadedModel``.

    Example::

        model = my.load_model("runs:/4f0c9a.../model")
        model = my.load_model("models:/churn@champion")
        model = my.load_model("s3://bucket/models/churn-7")
        model.predict(df)

    - ``allow_pickle``: load a package stored with pickle (it can run arbitrary code).
    - ``dst``: download into this folder instead of the cache (a local package is
      copied there first).
    - ``tracking``: the tracking service for ``runs:/`` URIs (default: the one the
      fluent API uses, as set by ``my.configure``).
    """
    uri = os.fspath(uri)
    path, fresh = _locate(uri, dst, tracking, force=False)
    try:
        return package.load(path, allow_pickle=allow_pickle)
    except ArtifactIntegrityError:
        if fresh:
            raise
    path, _ = _locate(uri, dst, tracking, force=True)  # a corrupted cache: fetch again
    return package.load(path, allow_pickle=allow_pickle)
