"""The data in a project folder: add, status and checkout of pointed-to paths.

`Workspace` joins the repository root (paths outside it are refused), the object
cache and the stat cache. ``add`` hashes only what changed since the last look,
stores new objects once and writes the pointer; ``checkout`` puts a pointer's
content back, checking each cache object that changed on disk since it was last
verified, and never overwrites workspace files whose content the cache lacks
unless forced.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from modelyard.core.errors import (
    ArtifactIntegrityError,
    InvalidParameter,
    InvalidState,
    ResourceNotFound,
)
from modelyard.datasets.cache import ObjectCache
from modelyard.datasets.pointer import SUFFIX, Pointer, ignore, pointer_path
from modelyard.datasets.state import FileStat, StatCache
from modelyard.datasets.tree import Entry, Tree, chunks, scan

__all__ = ["AddResult", "Changes", "CheckoutResult", "Workspace", "diff_trees", "find_root"]

Progress = Callable[[int], None]
_MARKERS = (".git", "modelyard.toml", ".modelyard")


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder up from ``start`` (the current folder)
    holding ``.git``, ``modelyard.toml`` or ``.modelyard``; else ``start`` itself."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in _MARKERS):
            return folder
    return here


@dataclass
class AddResult:
    pointer: Path
    oid: str
    files: int
    size: int
    hashed: int  # files read and hashed (the rest came from the stat cache)
    stored: int  # objects new to the cache
    unchanged: bool  # the pointer already named this content
    links: dict[str, int] = field(default_factory=dict)  # link type -> files


@dataclass
class Changes:
    """How tree ``new`` differs from tree ``old``, path by path."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.modified)


@dataclass
class CheckoutResult:
    path: Path
    written: int
    kept: int
    removed: int
    refetched: int = 0


def diff_trees(old: Tree, new: Tree) -> Changes:
    before, after = old.by_path(), new.by_path()
    return Changes(
        added=sorted(p for p in after if p not in before),
        removed=sorted(p for p in before if p not in after),
        modified=sorted(p for p in after if p in before and after[p].oid != before[p].oid),
    )


class Workspace:
    """Data paths under ``root``, their objects in ``cache``, their stats in ``state``."""

    def __init__(self, root: Path, cache: ObjectCache, state: StatCache) -> None:
        self.root = root.resolve()
        self.cache = cache
        self.state = state

    # --- paths ----------------------------------------------------------------------

    def resolve(self, path: str | Path) -> Path:
        """An absolute path inside the repository; refuses the rest with the reason."""
        raw = Path(path)
        full = Path(os.path.abspath(raw if raw.is_absolute() else Path.cwd() / raw))
        if full != self.root and self.root not in full.parents:
            raise InvalidParameter(
                f"{path} is outside the repository {self.root}; "
                "data must live inside the project to be versioned"
            )
        if full == self.root:
            return full
        if os.path.islink(full) and not full.exists():
            raise InvalidParameter(f"{path} is a dangling symlink (to {os.readlink(full)})")
        cache_root = self.cache.root.resolve()
        if full == cache_root or cache_root in full.parents or full in cache_root.parents:
            raise InvalidParameter(f"{path} holds modelyard's own cache; it cannot be added")
        return full

    def pointer_of(self, target: str | Path) -> tuple[Path, Pointer]:
        """The pointer file for ``target`` (the data path or ``PATH.yard``) and its content."""
        full = self.resolve(target)
        file = full if full.name.endswith(SUFFIX) else pointer_path(full)
        return file, Pointer.load(file)

    def pointers(self) -> list[Path]:
        """Every pointer file under the root (git-style: hidden folders skipped)."""
        found = []
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [Path(folder) / f for f in files if f.endswith(SUFFIX)]
        return sorted(found)

    def tree_of(self, pointer: Pointer) -> Tree:
        """The tree a pointer names (one entry named '' for a single file)."""
        if not pointer.is_dir:
            return Tree((Entry("", pointer.oid, pointer.size),))
        if not self.cache.has(pointer.oid):
            raise ResourceNotFound(
                f"Tree {pointer.oid} ({pointer.path}) is not in the local cache; "
                "run `modelyard data pull` first"
            )
        return Tree.from_bytes(self.cache.read_bytes(pointer.oid))

    # --- add ------------------------------------------------------------------------

    def add(
        self, path: str | Path, progress: Progress | None = None, start: Progress | None = None
    ) -> AddResult:
        """Version ``path``; ``start(total_bytes)`` is called once the folder is walked,
        then ``progress(bytes)`` as files are hashed or found unchanged."""
        full = self.resolve(path)
        if full.name.endswith(SUFFIX):
            raise InvalidParameter(f"{path} is a pointer file; add the data it points to")
        if not full.exists():
            raise ResourceNotFound(f"No file or folder {path}")
        if full == self.root:
            raise InvalidParameter("The repository root itself cannot be added; add a folder in it")
        file = pointer_path(full)
        old = Pointer.load(file) if file.exists() else None
        found = scan(full, self.state, progress, start)
        tree = found.tree
        is_dir = full.is_dir()
        oid = tree.oid if is_dir else tree.entries[0].oid
        stored_whole = self.cache.has(oid) and (
            not is_dir or not self.cache.missing([e.oid for e in tree.entries])
        )
        if old is not None and old.oid == oid and stored_whole:
            return AddResult(file, oid, len(tree.entries), tree.size, found.hashed, 0, True)
        links: dict[str, int] = {}
        stored = 0
        first: dict[str, Entry] = {}
        for e in tree.entries:
            first.setdefault(e.oid, e)
        unique = [first[oid] for oid in self.cache.missing(list(first))]
        base = str(full)

        def store(batch: list[Entry]) -> list[str | None]:
            return [
                self.cache.add_file(f"{base}/{e.path}" if e.path else base, e.oid) for e in batch
            ]

        with ThreadPoolExecutor(4) as pool:
            for kinds in pool.map(store, chunks(unique)):
                for kind in kinds:
                    if kind:
                        stored += 1
                        links[kind] = links.get(kind, 0) + 1
        if is_dir:
            self.cache.add_bytes(tree.to_bytes(), oid)
        # A hardlink makes the workspace file read-only too: its stat changed (ctime
        # only, but re-read it so the next look is free).
        if links.get("hardlink"):
            self._remember(full, tree)
        Pointer(oid, tree.size, len(tree.entries), full.name).save(file)
        ignore(full)
        return AddResult(
            file, oid, len(tree.entries), tree.size, found.hashed, stored, False, links
        )

    def _remember(self, full: Path, tree: Tree) -> None:
        base = str(full)
        rows = []
        for e in tree.entries:
            p = f"{base}/{e.path}" if e.path else base
            rows.append((p, FileStat.of(os.stat(p)), e.oid))
        self.state.save(rows)

    # --- status ---------------------------------------------------------------------

    def status(self, target: str | Path) -> Changes:
        """What changed in the workspace since the pointer: a missing data path shows
        every file as removed."""
        file, pointer = self.pointer_of(target)
        data = pointer.data_path(file)
        recorded = self.tree_of(pointer)
        if not data.exists():
            return Changes(removed=[e.path or data.name for e in recorded.entries])
        current = scan(data, self.state).tree
        if not pointer.is_dir:
            same = current.entries[0].oid == pointer.oid
            return Changes() if same else Changes(modified=[data.name])
        return diff_trees(recorded, current)

    # --- checkout -------------------------------------------------------------------

    def checkout(
        self,
        target: str | Path,
        force: bool = False,
        refetch: Callable[[list[str]], None] | None = None,
        progress: Progress | None = None,
    ) -> CheckoutResult:
        """Make the data path hold exactly what the pointer names.

        ``refetch(oids)`` (the remote's pull) replaces cache objects found corrupted;
        without it a corrupted object is refused. Workspace files whose content is in
        no cached object are kept (and the checkout refused) unless ``force``.
        """
        file, pointer = self.pointer_of(target)
        data = pointer.data_path(file)
        tree = self.tree_of(pointer)
        missing = self.cache.missing(sorted({e.oid for e in tree.entries}))
        if missing:
            raise ResourceNotFound(
                f"{len(missing)} object(s) of {pointer.path} are not in the local cache "
                f"(first: {missing[0]}); run `modelyard data pull {file.name}`"
            )
        current: dict[str, Entry] = {}
        if data.exists():
            if data.is_dir() != pointer.is_dir:
                raise InvalidState(
                    f"{data} is a {'folder' if data.is_dir() else 'file'} but the pointer "
                    f"names a {'folder' if pointer.is_dir else 'file'}; move it away first"
                )
            current = scan(data, self.state).tree.by_path()
        wanted = tree.by_path()
        if not force:
            unsaved = [
                p
                for p, e in current.items()
                if (p not in wanted or wanted[p].oid != e.oid) and not self.cache.has(e.oid)
            ]
            if unsaved:
                raise InvalidState(
                    f"{len(unsaved)} file(s) in {data} hold changes that are in no saved "
                    f"version (first: {unsaved[0] or data.name}); `modelyard data add` them "
                    "or check out with --force to discard them"
                )
        refetched = self.verify_objects(
            [e for p, e in wanted.items() if p not in current or current[p].oid != e.oid],
            refetch,
        )
        written = kept = removed = 0
        rows = []
        for path, entry in wanted.items():
            dest = data / path if path else data
            if path in current and current[path].oid == entry.oid:
                kept += 1
            else:
                self.cache.checkout_file(entry.oid, dest)
                rows.append((str(dest), FileStat.of(dest.stat()), entry.oid))
                written += 1
            if progress:
                progress(entry.size)
        for path in current.keys() - wanted.keys():
            (data / path).unlink()
            removed += 1
        self.state.save(rows)
        return CheckoutResult(data, written, kept, removed, refetched)

    def verify_objects(
        self, entries: list[Entry], refetch: Callable[[list[str]], None] | None
    ) -> int:
        """Re-hash each cache object whose stat changed since it was last verified;
        corrupted ones are deleted and re-fetched (or refused)."""
        bad: list[str] = []
        rows = []
        known = self.state.under(str(self.cache.root)) if entries else {}
        for oid in sorted({e.oid for e in entries}):
            path = self.cache.path(oid)
            st = FileStat.of(path.stat())
            if known.get(str(path)) == (st, oid):
                continue
            if self.cache.verify(oid):
                rows.append((str(path), st, oid))
            else:
                bad.append(oid)
        self.state.save(rows)
        if not bad:
            return 0
        if refetch is None:
            raise ArtifactIntegrityError(
                f"{len(bad)} cache object(s) are corrupted (their bytes no longer match their "
                f"hash; first: {bad[0]}) and no remote is configured to fetch them again. "
                "Nothing was checked out; restore them with `modelyard data pull --remote URL`"
            )
        for oid in bad:
            path = self.cache.path(oid)
            os.chmod(path, 0o644)
            self.cache.remove(oid)
        refetch(bad)
        still = [oid for oid in bad if not self.cache.has(oid) or not self.cache.verify(oid)]
        if still:
            raise ArtifactIntegrityError(
                f"{len(still)} corrupted cache object(s) could not be fetched again intact "
                f"(first: {still[0]}); nothing was checked out"
            )
        return len(bad)
