"""Data in the fluent API: ``my.data.get("churn@3")``, ``my.data.split(...)``,
``my.data.register(...)``; ``my.log_input(...)`` and ``my.lineage(...)`` at the top.

Each function is one call on the DataService of the current store (it follows
``my.configure``). The split functions need no store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelyard.datasets.backends import open_data
from modelyard.datasets.entities import DatasetVersion
from modelyard.datasets.service import SPLIT_TAG, DataService, Lineage
from modelyard.datasets.split import Split, split, verify_split
from modelyard.sdk import fluent
from modelyard.tracking.entities import RunInput

__all__ = [
    "data_service",
    "get",
    "get_version",
    "lineage",
    "log_input",
    "register",
    "split",
    "verify_split",
    "versions",
]

_cache: dict[int, DataService] = {}


def data_service() -> DataService:
    """The data service of the current store."""
    tracking = fluent.client()
    svc = _cache.get(id(tracking))
    if svc is None:
        _cache.clear()
        svc = _cache[id(tracking)] = open_data(fluent._current().settings, lambda: tracking)
    return svc


def register(
    name: str,
    path: str | Path,
    *,
    description: str | None = None,
    remote: str | None = None,
) -> DatasetVersion:
    """Version the file or folder at ``path`` as the next version of dataset ``name``
    (the current version when the content is unchanged); pushed when a remote is set.
    Inside a run, the version records that run as its producer."""
    run = fluent.active_run()
    version, _ = data_service().register(
        name,
        path,
        description=description,
        remote=remote,
        run_id=run.run_id if run else None,
    )
    return version


def get_version(ref: str) -> DatasetVersion:
    """The registry entry of ``ref`` (``churn@3``, or ``churn`` for the latest)."""
    return data_service().get(ref)


def versions(name: str | None = None) -> list[DatasetVersion]:
    return data_service().versions(name)


def get(ref: str, *, as_: str = "pandas", remote: str | None = None) -> Any:
    """The exact data of a version as a table: ``as_`` is ``pandas`` (default),
    ``arrow`` or ``polars``; pulled from the remote first when not cached."""
    table = data_service().read(ref, remote)
    if as_ == "arrow":
        return table
    if as_ == "pandas":
        return table.to_pandas()
    if as_ == "polars":
        try:
            import polars as pl
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("as_='polars' needs polars: pip install polars") from exc
        return pl.from_arrow(table)
    from modelyard.core.errors import InvalidParameter

    raise InvalidParameter(f"as_ must be 'pandas', 'arrow' or 'polars', not {as_!r}")


def log_input(
    dataset: str | DatasetVersion,
    context: str = "train",
    *,
    split: Split | None = None,
    part: str | None = None,
) -> DatasetVersion:
    """Record that the active run consumed ``dataset`` (``churn@3`` or a version) as
    ``context``; with ``split``, also the seed and row-id hash of part ``part``
    (default: the part named like ``context``)."""
    version = dataset if isinstance(dataset, DatasetVersion) else get_version(dataset)
    tr = fluent._current()
    run_id = tr.active().run_id
    tr.service.log_inputs(
        run_id, [RunInput(version.name, version.oid, f"dataset:{version.ref}", context)]
    )
    if split is not None:
        name = part or context
        if name not in split:
            from modelyard.core.errors import InvalidParameter

            raise InvalidParameter(
                f"log_input: the split has no part {name!r} (parts: {', '.join(split)}); "
                "pass part=..."
            )
        fluent.set_tag(f"{SPLIT_TAG}{context}", json.dumps(split.record(name), sort_keys=True))
    return version


def lineage(model_uri: str) -> Lineage:
    """model version -> run -> dataset versions -> content hashes, in one call."""
    return data_service().lineage(model_uri)
