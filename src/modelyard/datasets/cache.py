"""The local object cache: each distinct content stored once, named by its hash.

``<root>/<oid[:2]>/<oid[2:]>`` holds the bytes of object ``oid``; a tree (a folder's
listing, see `tree`) is an object too, its id ending in ``.dir``. Objects are
written to a temporary name and renamed into place, so a reader never sees half an
object, and they are made read-only. A workspace file enters the cache (and leaves
it on checkout) by the first link type the filesystem allows, in the configured
order: ``reflink`` (a copy-on-write clone: btrfs, XFS, APFS), ``hardlink`` (the
same inode under two names: instant, and read-only like the cache object), then
``copy``.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from modelyard.core.errors import ArtifactIntegrityError, InvalidParameter, StorageFull
from modelyard.core.ids import new_id
from modelyard.datasets.hashing import hash_bytes, hash_file, is_oid

__all__ = ["LINK_TYPES", "ObjectCache", "link_or_copy", "storage_full"]

LINK_TYPES = ("reflink", "hardlink", "copy")
_FICLONE = 0x40049409  # linux/fs.h: clone a whole file (copy-on-write)
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def storage_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def _reflink(src: str, dst: str) -> None:
    import fcntl

    with open(src, "rb") as s, open(dst, "wb") as d:
        try:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        except OSError:
            d.close()
            os.unlink(dst)
            raise


def link_or_copy(src: str, dst: str, order: Sequence[str], unsupported: set[str]) -> str:
    """Make ``dst`` (which must not exist) hold ``src``'s bytes; return the link type
    used, the first of ``order`` the filesystem allows. A link type that fails joins
    ``unsupported`` and is not tried again (a failed clone costs more than a copy)."""
    last: OSError | None = None
    for kind in order:
        if kind in unsupported and kind != "copy":
            continue
        try:
            if kind == "reflink":
                _reflink(src, dst)
            elif kind == "hardlink":
                os.link(src, dst)
            elif kind == "copy":
                shutil.copyfile(src, dst)
            else:
                raise InvalidParameter(f"Unknown link type {kind!r}; use {', '.join(LINK_TYPES)}")
            return kind
        except OSError as exc:
            if storage_full(exc) or isinstance(exc, FileExistsError):
                raise
            unsupported.add(kind)
            last = exc
    raise last or InvalidParameter("No link type given")


class ObjectCache:
    """Objects by id under ``root``; ``link_types`` orders how files enter and leave."""

    def __init__(self, root: str | Path, link_types: Sequence[str] = LINK_TYPES) -> None:
        self.root = Path(root)
        self._base = str(self.root)
        bad = [t for t in link_types if t not in LINK_TYPES]
        if bad or not link_types:
            raise InvalidParameter(
                f"Unknown link type(s) {bad or link_types}; use some of {', '.join(LINK_TYPES)}"
            )
        self.link_types = tuple(link_types)
        self._made: set[str] = set()
        self._unsupported: set[str] = set()

    # --- naming ---------------------------------------------------------------------

    def path(self, oid: str) -> Path:
        return Path(self.fspath(oid))

    def fspath(self, oid: str) -> str:
        """The object's path as a string (the hot paths avoid pathlib's cost)."""
        if not is_oid(oid):
            raise InvalidParameter(f"{oid!r} is not an object id")
        return f"{self._base}/{oid[:2]}/{oid[2:]}"

    def has(self, oid: str) -> bool:
        return os.path.exists(self.fspath(oid))

    def missing(self, oids: Iterator[str] | Sequence[str]) -> list[str]:
        """The ids the cache lacks; many ids cost one listing, not a stat each."""
        oids = list(oids)
        if len(oids) < 2000:
            return [oid for oid in oids if not self.has(oid)]
        present = set(self.iter_oids())
        return [oid for oid in oids if oid not in present]

    def iter_oids(self) -> Iterator[str]:
        """Every object id in the cache (no temporary files)."""
        if not self.root.is_dir():
            return
        for prefix in os.scandir(self.root):
            if len(prefix.name) != 2 or not prefix.is_dir():
                continue
            for entry in os.scandir(prefix.path):
                oid = prefix.name + entry.name
                if is_oid(oid):
                    yield oid

    # --- writing --------------------------------------------------------------------

    def _tmp(self) -> str:
        tmp_dir = self.root / "tmp"
        if "tmp" not in self._made:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self._made.add("tmp")
        return str(tmp_dir / new_id())

    def _commit(self, tmp: str, oid: str) -> None:
        self._ensure_dir(oid)
        os.chmod(tmp, _READ_ONLY)
        os.replace(tmp, self.fspath(oid))

    def _ensure_dir(self, oid: str) -> None:
        if oid[:2] not in self._made:
            os.makedirs(f"{self._base}/{oid[:2]}", exist_ok=True)
            self._made.add(oid[:2])

    def _guard(self, what: str, exc: OSError) -> None:
        if storage_full(exc):
            raise StorageFull(
                f"Could not store {what} in the data cache {self.root}: {exc.strerror}. "
                "Nothing was written; free space and retry."
            ) from exc

    def add_file(self, src: str | Path, oid: str) -> str | None:
        """Store the file ``src`` (whose hash is ``oid``) unless the cache has it;
        return the link type used, or None when the object was already there."""
        if self.has(oid):
            return None
        order = [k for k in self.link_types if k not in self._unsupported or k == "copy"]
        if order[0] == "hardlink":
            # A new name for the same inode appears whole or not at all: no temp file.
            final = self.fspath(oid)
            self._ensure_dir(oid)
            try:
                os.link(src, final)
                os.chmod(final, _READ_ONLY)
                return "hardlink"
            except FileExistsError:
                return None
            except OSError as exc:
                self._guard(f"{src}", exc)
                self._unsupported.add("hardlink")
        tmp = self._tmp()
        try:
            kind = link_or_copy(str(src), tmp, self.link_types, self._unsupported)
            self._commit(tmp, oid)
        except OSError as exc:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            self._guard(f"{src}", exc)
            raise
        return kind

    def add_bytes(self, data: bytes, oid: str | None = None) -> str:
        """Store ``data``; return its id (``oid`` names trees, which end in ``.dir``)."""
        oid = oid or hash_bytes(data)
        if self.has(oid):
            return oid
        tmp = self._tmp()
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            self._commit(tmp, oid)
        except OSError as exc:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            self._guard(f"object {oid}", exc)
            raise
        return oid

    def read_bytes(self, oid: str) -> bytes:
        return self.path(oid).read_bytes()

    def remove(self, oid: str) -> int:
        """Delete an object; return the bytes freed (0 when it was not there)."""
        path = self.path(oid)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    # --- reading out ----------------------------------------------------------------

    def verify(self, oid: str) -> bool:
        """Whether the object's bytes still hash to its id (trees included)."""
        path = self.path(oid)
        if oid.endswith(".dir"):
            return hash_bytes(path.read_bytes()) == oid.removesuffix(".dir")
        return hash_file(path) == oid

    def checkout_file(self, oid: str, dest: str | Path) -> str:
        """Place object ``oid`` at ``dest`` (replacing what is there); return the link
        type used. The object must be in the cache."""
        src = self.path(oid)
        if not src.exists():
            raise ArtifactIntegrityError(f"Object {oid} is not in the data cache {self.root}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{dest.parent}/.{dest.name}.{new_id()[:8]}.yard-tmp"
        try:
            kind = link_or_copy(str(src), tmp, self.link_types, self._unsupported)
            if kind != "hardlink":
                os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except OSError as exc:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            if storage_full(exc):
                raise StorageFull(
                    f"Could not write {dest}: {exc.strerror}. Free space and retry."
                ) from exc
            raise
        return kind
