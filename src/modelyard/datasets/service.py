"""The data service: versioned paths, the dataset registry, lineage and gc.

One object the SDK, the CLI and the pipelines call. It joins the workspace (pointer
files, the object cache, the stat cache), the remote (push/pull), the registry's
rows in the metadata database and the profiles in the artifact store.

Targets: a path (``data``, ``data.yard``) names a pointer in the workspace; a
dataset reference (``churn``, ``churn@3``) names a registered version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import InvalidParameter, InvalidState, ResourceNotFound
from modelyard.core.ids import current_user
from modelyard.datasets.entities import DatasetVersion, check_dataset_name, parse_ref
from modelyard.datasets.hashing import is_oid
from modelyard.datasets.pointer import SUFFIX, Pointer, pointer_path
from modelyard.datasets.sql_store import SqlDatasetStore
from modelyard.datasets.tabular import (
    TableDiff,
    columns_of,
    diff_tables,
    read_table,
    table_format,
)
from modelyard.datasets.tree import Entry, Tree
from modelyard.datasets.workspace import AddResult, Changes, Workspace, diff_trees

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from modelyard.core.artifacts import ArtifactStore
    from modelyard.datasets.remote import Remote, Transfer
    from modelyard.monitor.profile import DatasetProfile
    from modelyard.registry.service import RegistryService

__all__ = ["Catalog", "DataService", "DiffResult", "GcResult", "Lineage", "LineageInput", "Target"]

Progress = Callable[[int], None]
SPLIT_TAG = "modelyard.data.split."  # + context: the split record of a run input


@dataclass(frozen=True)
class Target:
    """What a push, pull or diff acts on: content, and where it came from."""

    oid: str
    label: str  # the pointer file or the dataset reference
    size: int
    files: int
    pointer: Path | None = None
    version: DatasetVersion | None = None


@dataclass
class DiffResult:
    old: str
    new: str
    changes: Changes
    table: TableDiff | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.changes
        return {
            "old": self.old,
            "new": self.new,
            "added": c.added,
            "removed": c.removed,
            "modified": c.modified,
            "table": self.table.to_dict() if self.table else None,
        }


@dataclass
class LineageInput:
    dataset_name: str
    digest: str
    context: str | None
    version: DatasetVersion | None  # the registry entry with this content, if any
    split: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset_name,
            "ref": self.version.ref if self.version else None,
            "digest": self.digest,
            "context": self.context,
            "size": self.version.size if self.version else None,
            "files": self.version.files if self.version else None,
            "rows": self.version.rows if self.version else None,
            "remote": self.version.remote if self.version else None,
            "split": self.split,
        }


@dataclass
class Lineage:
    """model version -> run -> dataset versions -> content hashes."""

    model: str
    version: int
    run_id: str | None
    inputs: list[LineageInput] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "run_id": self.run_id,
            "inputs": [i.to_dict() for i in self.inputs],
        }


@dataclass
class GcResult:
    removed: list[str]
    freed: int
    kept: int
    dry_run: bool


@dataclass
class Catalog:
    """The database-backed half: registry rows, profiles, the model registry."""

    store: SqlDatasetStore
    artifacts: ArtifactStore
    registry: RegistryService | None = None


class DataService:
    """``open_catalog`` is called on first need: commands on pointer files never open
    the metadata database."""

    def __init__(
        self,
        workspace: Workspace,
        open_catalog: Callable[[], Catalog],
        remote_url: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.cache = workspace.cache
        self.remote_url = remote_url
        self._open_catalog = open_catalog
        self._catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = self._open_catalog()
        return self._catalog

    @property
    def store(self) -> SqlDatasetStore:
        return self.catalog.store

    @property
    def artifacts(self) -> ArtifactStore:
        return self.catalog.artifacts

    @property
    def registry(self) -> RegistryService | None:
        return self.catalog.registry

    # --- remote ---------------------------------------------------------------------

    def remote(self, url: str | None = None) -> Remote:
        from modelyard.datasets.remote import Remote

        url = url or self.remote_url
        if not url:
            raise InvalidParameter(
                "No data remote: pass --remote URL or set MODELYARD_DATA_REMOTE "
                "(a folder or s3://bucket/prefix)"
            )
        return Remote(url)

    # --- targets --------------------------------------------------------------------

    def target(self, name: str | Path) -> Target:
        """A pointer (when the path or ``PATH.yard`` exists) or a dataset reference."""
        path = Path(name)
        if path.exists() or pointer_path(path).exists() or str(name).endswith(SUFFIX):
            file, p = self.workspace.pointer_of(path)
            return Target(p.oid, str(file), p.size, p.files, pointer=file)
        version = self.get(str(name))
        return Target(version.oid, version.ref, version.size, version.files, version=version)

    def targets(self, names: Sequence[str | Path]) -> list[Target]:
        """The named targets; none named means every pointer in the workspace."""
        if names:
            return [self.target(n) for n in names]
        found = [self.target(p) for p in self.workspace.pointers()]
        if not found:
            raise ResourceNotFound(
                f"No pointer files (*{SUFFIX}) under {self.workspace.root}; "
                "`modelyard data add PATH` first, or name a dataset (NAME@VERSION)"
            )
        return found

    # --- workspace ------------------------------------------------------------------

    def add(
        self, path: str | Path, progress: Progress | None = None, start: Progress | None = None
    ) -> AddResult:
        return self.workspace.add(path, progress, start)

    def status(self, target: str | Path) -> Changes:
        return self.workspace.status(target)

    def checkout(
        self,
        target: str | Path,
        force: bool = False,
        remote: str | None = None,
        progress: Progress | None = None,
    ):
        """Restore the data a pointer names; corrupted cache objects are fetched again
        from the remote when one is configured."""
        refetch = self._refetch(remote)
        return self.workspace.checkout(target, force=force, refetch=refetch, progress=progress)

    def _refetch(self, remote: str | None) -> Callable[[list[str]], None] | None:
        url = remote or self.remote_url
        if not url:
            return None
        rem = self.remote(url)

        def refetch(oids: list[str]) -> None:
            for oid in oids:
                rem.pull(self.cache, oid)

        return refetch

    def push(
        self,
        target: Target,
        remote: str | None = None,
        progress: Progress | None = None,
        start: Progress | None = None,
    ) -> Transfer:
        """Send a target's content; ``start(total_bytes)`` comes before ``progress``."""
        self._require_local(target)
        return self.remote(remote or (target.version and target.version.remote)).push(
            self.cache, target.oid, progress, start=start
        )

    def pull(
        self,
        target: Target,
        remote: str | None = None,
        progress: Progress | None = None,
        start: Progress | None = None,
    ) -> Transfer:
        return self.remote(remote or (target.version and target.version.remote)).pull(
            self.cache, target.oid, progress, start=start
        )

    def _require_local(self, target: Target) -> None:
        if not self.cache.has(target.oid):
            raise ResourceNotFound(
                f"{target.label}: its content {target.oid} is not in the local cache; "
                "nothing to push (was it added on another machine? pull it first)"
            )

    def tree(self, oid: str, size: int = 0) -> Tree:
        if not oid.endswith(".dir"):
            return Tree((Entry("", oid, size),))
        if not self.cache.has(oid):
            raise ResourceNotFound(f"Tree {oid} is not in the local cache; pull it first")
        return Tree.from_bytes(self.cache.read_bytes(oid))

    # --- registry -------------------------------------------------------------------

    def register(
        self,
        name: str,
        path: str | Path,
        *,
        description: str | None = None,
        remote: str | None = None,
        run_id: str | None = None,
        profile: bool = True,
        progress: Progress | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Version the data at ``path`` as the next version of ``name`` (pushing it
        when a remote is set); returns (version, created). Content equal to the latest
        version's makes no new version."""
        check_dataset_name(name)
        added = self.workspace.add(path, progress)
        try:
            latest = self.store.get_version(name)
        except ResourceNotFound:
            latest = None
        if latest is not None and latest.oid == added.oid:
            return latest, False
        url = remote or self.remote_url
        if url:
            self.remote(url).push(self.cache, added.oid)
        full = self.workspace.resolve(path)
        fmt, table = self._table(added.oid, full.name, added.size)
        draft = DatasetVersion(
            name=name,
            version=0,
            oid=added.oid,
            size=added.size,
            files=added.files,
            path=str(full.relative_to(self.workspace.root)),
            remote=url,
            format=fmt,
            rows=table.num_rows if table is not None else None,
            columns=columns_of(table) if table is not None else [],
            description=description,
            run_id=run_id,
            user_id=current_user(),
        )
        version = self.store.add_version(draft, description)
        if table is not None and profile:
            version = self._save_profile(version, table)
        return version, True

    def _table(self, oid: str, name: str, size: int) -> tuple[str | None, pa.Table | None]:
        """The tabular content of ``oid`` (all its Parquet, else all its CSV files)."""
        tree = self.tree(oid, size)
        named = [(e, e.path or name) for e in tree.entries]
        for fmt in ("parquet", "csv"):
            files = [self.cache.path(e.oid) for e, n in named if table_format(n) == fmt]
            if files:
                return fmt, read_table(files, fmt)
        return None, None

    def _save_profile(self, version: DatasetVersion, table: pa.Table) -> DatasetVersion:
        from modelyard.monitor.profile import profile

        key = f"datasets/{version.name}/{version.version}/profile.json"
        body = json.dumps(profile(table).to_dict(), default=float).encode()
        self.artifacts.put_bytes(body, key)
        uri = self.artifacts.uri(key)
        self.store.set_profile_uri(version.name, version.version, uri)
        return self.store.get_version(version.name, version.version)

    def get(self, ref: str) -> DatasetVersion:
        name, number = parse_ref(ref)
        return self.store.get_version(name, number)

    def versions(self, name: str | None = None) -> list[DatasetVersion]:
        return self.store.list_versions(name)

    def profile(self, ref: str) -> DatasetProfile:
        from modelyard.monitor.profile import DatasetProfile

        version = self.get(ref)
        if not version.profile_uri:
            raise ResourceNotFound(f"{version.ref} has no profile (it is not tabular)")
        key = f"datasets/{version.name}/{version.version}/profile.json"
        return DatasetProfile.from_dict(json.loads(self.artifacts.read_bytes(key)))

    # --- reading a version ------------------------------------------------------------

    def materialize(self, ref: str, remote: str | None = None) -> list[tuple[str, Path]]:
        """(workspace name, cache path) of every file of a version, pulled from the
        remote first when the local cache lacks some, and verified."""
        version = self.get(ref)
        target = Target(version.oid, version.ref, version.size, version.files, version=version)
        missing = not self.cache.has(version.oid)
        if not missing and version.oid.endswith(".dir"):
            missing = bool(self.cache.missing([e.oid for e in self.tree(version.oid).entries]))
        if missing:
            self.pull(target, remote)
        tree = self.tree(version.oid, version.size)
        self.workspace.verify_objects(list(tree.entries), self._refetch(remote))
        name = Path(version.path).name
        return [(e.path or name, self.cache.path(e.oid)) for e in tree.entries]

    def read(self, ref: str, remote: str | None = None) -> pa.Table:
        files = self.materialize(ref, remote)
        for fmt in ("parquet", "csv"):
            chosen = [p for n, p in files if table_format(n) == fmt]
            if chosen:
                return read_table(chosen, fmt)
        raise InvalidParameter(f"{ref} holds no Parquet or CSV file to read as a table")

    # --- diff -----------------------------------------------------------------------

    def diff(self, old: str, new: str) -> DiffResult:
        a, b = self.target(old), self.target(new)
        ta, tb = self.tree(a.oid, a.size), self.tree(b.oid, b.size)
        if not a.oid.endswith(".dir") and not b.oid.endswith(".dir"):
            changes = Changes() if a.oid == b.oid else Changes(modified=[a.label])
        else:
            changes = diff_trees(ta, tb)
        table = None
        if a.oid != b.oid:
            _, xa = self._table_or_none(a, ta)
            _, xb = self._table_or_none(b, tb)
            if xa is not None and xb is not None:
                table = diff_tables(xa, xb)
        return DiffResult(a.label, b.label, changes, table)

    def _table_or_none(self, target: Target, tree: Tree) -> tuple[str | None, pa.Table | None]:
        if self.cache.missing([e.oid for e in tree.entries]):
            return None, None
        name = Path(target.version.path).name if target.version else self._data_name(target)
        return self._table(target.oid, name, target.size)

    def _data_name(self, target: Target) -> str:
        return Pointer.load(target.pointer).path if target.pointer else ""

    # --- lineage --------------------------------------------------------------------

    def lineage(self, model_uri: str) -> Lineage:
        """The training data of a model version: its run's inputs, each resolved to
        the registered dataset version holding that content."""
        if self.registry is None:
            raise InvalidState("Lineage needs the model registry")
        mv = self.registry.resolve(model_uri)
        tags: dict[str, str] = {}
        items = list(mv.lineage)
        if mv.run_id:
            run = self.registry.tracking.get_run(mv.run_id)
            tags = run.data.tags
            if not items:
                items = [
                    {
                        "dataset_name": i.dataset_name,
                        "dataset_digest": i.dataset_digest,
                        "context": i.context,
                    }
                    for i in run.inputs
                ]
        out = Lineage(mv.name, int(mv.version), mv.run_id)
        for item in items:
            digest = item["dataset_digest"]
            matches = [v for v in self.store.find_by_oid(digest) if v.name == item["dataset_name"]]
            context = item.get("context")
            raw = tags.get(f"{SPLIT_TAG}{context}") if context else None
            out.inputs.append(
                LineageInput(
                    item["dataset_name"],
                    digest,
                    context,
                    matches[0] if matches else None,
                    json.loads(raw) if raw else None,
                )
            )
        return out

    # --- garbage collection -----------------------------------------------------------

    def referenced(self) -> set[str]:
        """Every object something still needs: dataset versions, run inputs, model
        lineage and the workspace's pointers, with the contents of their trees."""
        roots = {v.oid for v in self.store.list_versions()}
        roots |= self.store.run_input_digests()
        roots |= self.store.model_lineage_digests()
        for file in self.workspace.pointers():
            roots.add(Pointer.load(file).oid)
        keep = set()
        for oid in roots:
            if not is_oid(oid):
                continue  # a run input logged with another tool's digest
            keep.add(oid)
            if oid.endswith(".dir"):
                if not self.cache.has(oid):
                    raise InvalidState(
                        f"Tree {oid} is referenced but not in the local cache, so gc cannot "
                        "tell which objects it needs; pull it (modelyard data pull) and retry"
                    )
                keep |= {e.oid for e in self.tree(oid).entries}
        return keep

    def gc(self, dry_run: bool = True) -> GcResult:
        keep = self.referenced()
        removed, freed, kept = [], 0, 0
        for oid in list(self.cache.iter_oids()):
            if oid in keep:
                kept += 1
                continue
            removed.append(oid)
            path = self.cache.path(oid)
            if dry_run:
                freed += path.stat().st_size
            else:
                freed += self.cache.remove(oid)
        return GcResult(sorted(removed), freed, kept, dry_run)
