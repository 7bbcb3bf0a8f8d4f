"""Push and pull data objects to a remote: any fsspec URL (a folder, ``s3://...``).

Layout under the remote's URL::

    objects/<oid[:2]>/<oid[2:]>   one object on its own: trees, and files of
                                  ``pack_threshold`` (1 MiB) or more
    packs/<pack-id>.pack          smaller objects back to back, ~``pack_size`` each
    packs/<pack-id>.idx           the pack's index (see `packs`), written after the
                                  pack: a pack without its index does not count
    done/<root-oid>               written last by a push: all of that root is here
    tmp/                          a local folder's half-written files (never read)

Every unit (an object, a pack then its index, a marker) is one atomic write: a
temporary file renamed into place on a local folder, one PUT on an object store.
A push or pull killed halfway leaves whole units only, and the re-run skips them.

What a remote holds is learnt from one listing of ``packs/``, one GET per index
not read before, and one paginated listing of ``objects/``, never from a request
per object. A push whose ``done/`` marker exists costs that one request; a pull
whose objects are all in the local cache costs none. A pull checks every object's
hash before it enters the cache; a push checks the hash of what it reads and the
size of what landed.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import fsspec
from fsspec.callbacks import Callback

from modelyard.core.errors import (
    ArtifactIntegrityError,
    InvalidParameter,
    ModelyardError,
    ResourceNotFound,
    StorageFull,
    StoreUnavailable,
)
from modelyard.core.ids import new_id
from modelyard.datasets.cache import ObjectCache, storage_full
from modelyard.datasets.hashing import hash_bytes, hash_file, is_oid
from modelyard.datasets.packs import PackIndex, build_pack, coalesce, group
from modelyard.datasets.tree import Tree

__all__ = ["Remote", "Transfer"]

Progress = Callable[[int], None]
_RANGE_GAP = 256 << 10  # read over a gap this small rather than send another GET
_SHOWN = 5  # object ids named in a "missing" message


@dataclass
class Transfer:
    """What one `Remote.push` or `Remote.pull` moved; ``summary()`` is the CLI's line."""

    direction: str  # "push" or "pull"
    root_oid: str
    objects: int = 0  # objects sent or received, the tree included
    bytes: int = 0  # their bytes
    skipped: int = 0  # objects already at the destination
    packs: int = 0  # pack files written or read
    loose: int = 0  # objects written or read on their own
    seconds: float = 0.0

    @property
    def noop(self) -> bool:
        return self.objects == 0

    def _add(self, kind: str, count: int, size: int) -> None:
        self.objects, self.bytes = self.objects + count, self.bytes + size
        self.packs += kind == "pack"
        self.loose += kind == "loose"

    def summary(self) -> str:
        if self.noop:
            return f"{self.root_oid}: up to date ({self.seconds:.2f} s)"
        verb, where = ("Pushed", "remote") if self.direction == "push" else ("Pulled", "cache")
        return (
            f"{verb} {self.objects:,} objects, {_human(self.bytes)} ({self.packs} packs, "
            f"{self.loose} single objects); {self.skipped:,} already in the {where}; "
            f"{self.seconds:.1f} s"
        )


@dataclass
class _Holdings:
    """What a remote holds: packed objects (by the index of their pack) and loose ones."""

    packed: dict[str, PackIndex]
    loose: dict[str, int]  # oid -> size

    def __contains__(self, oid: object) -> bool:
        return oid in self.packed or oid in self.loose


class _Meter:
    """Passes byte counts from worker threads to the caller's callback, one at a time."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        if n and self._progress is not None:
            with self._lock:
                self._progress(n)


class _Relay:
    """An fsspec callback hook: forwards an upload's increments to a meter."""

    def __init__(self, meter: _Meter) -> None:
        self.meter, self.sent = meter, 0

    def __call__(self, size: int | None, value: int, **_: Any) -> None:
        self.meter(value - self.sent)
        self.sent = value


class Remote:
    """A data remote at ``url``: push objects from an `ObjectCache`, pull them back.

    Example::

        remote = Remote("s3://team-data/yard", jobs=16)
        sent = remote.push(cache, tree_oid, progress=bar.advance, start=bar.set_total)
        print(sent.summary())
        remote.pull(other_cache, tree_oid)  # every object hash-checked on arrival

    - ``url``: a folder, ``file://...``, ``s3://bucket/prefix`` or any fsspec URL.
    - ``jobs``: transfers in flight at once (threads).
    - ``fs``: a filesystem to use instead of the one ``url`` names (tests pass an
      instrumented one); ``storage_options`` configure the one it names.
    - ``pack_threshold``: objects smaller than this (bytes) travel in packs.
    - ``pack_size``: about how large a pack grows; a push holds up to ``jobs``
      packs in memory at once.

    ``push`` and ``pull`` call ``start(total_bytes)`` once, before anything moves
    (with 0 when there is nothing to do), then ``progress(n_bytes)`` as bytes move,
    from worker threads (one call at a time).
    """

    def __init__(
        self,
        url: str,
        *,
        jobs: int = 8,
        fs: Any | None = None,
        storage_options: dict[str, Any] | None = None,
        pack_threshold: int = 1 << 20,
        pack_size: int = 32 << 20,
    ) -> None:
        if not isinstance(url, str) or not url.strip():
            raise InvalidParameter(f"A remote URL is needed (a folder or s3://...), got {url!r}")
        for name, value in (("jobs", jobs), ("pack_threshold", pack_threshold)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidParameter(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(pack_size, int) or pack_size < pack_threshold:
            raise InvalidParameter(f"pack_size must be at least pack_threshold, got {pack_size!r}")
        self.url = url.rstrip("/") if "://" in url else str(Path(url).expanduser().absolute())
        self.jobs, self.pack_threshold, self.pack_size = jobs, pack_threshold, pack_size
        if fs is None:
            try:
                fs, base = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
            except (ImportError, ValueError, TypeError) as exc:
                raise InvalidParameter(f"Cannot open remote {self.url}: {exc}") from exc
        else:
            base = fs._strip_protocol(self.url)
        self.fs = fs
        self._base = base.rstrip("/")
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self._local = "file" in protocols
        self._indexes: dict[str, PackIndex] = {}  # packs are immutable: read each once
        self._made: set[str] = set()

    # --- the three questions -----------------------------------------------------

    def has(self, root_oid: str) -> bool:
        """Whether the remote holds ``root_oid`` and, for a tree, every object in it."""
        _check_oid(root_oid)
        if self._pushed(root_oid):
            return True
        if not root_oid.endswith(".dir"):
            return root_oid in self._holdings()
        try:
            tree = self._get_tree(root_oid)
        except ResourceNotFound:
            return False
        held = self._holdings()
        return all(oid in held for oid in _members(root_oid, tree)[:-1])  # [-1]: the tree

    def push(
        self,
        cache: ObjectCache,
        root_oid: str,
        progress: Progress | None = None,
        *,
        start: Progress | None = None,
    ) -> Transfer:
        """Send ``root_oid`` (a file object, or a tree and every object it lists) from
        ``cache``, skipping what the remote holds; ``done/<root_oid>`` is written last."""
        began = time.perf_counter()
        _check_oid(root_oid)
        out = Transfer("push", root_oid)
        if self._pushed(root_oid):
            return _finish(out, began, start)
        tree = None
        if root_oid.endswith(".dir"):
            if not cache.has(root_oid):
                raise ResourceNotFound(
                    f"Tree {root_oid} is not in the data cache {cache.root}; nothing to push"
                )
            tree = cache.read_bytes(root_oid)
        wanted = _members(root_oid, tree)
        held = self._holdings()
        todo = [oid for oid in wanted if oid not in held]
        out.skipped = len(wanted) - len(todo)
        if absent := cache.missing(todo):
            raise ResourceNotFound(
                f"The data cache {cache.root} lacks {_listing(absent)} of {root_oid}; "
                f"nothing was pushed to {self.url}. Add the data again, or pull it first."
            )
        sizes = {oid: os.stat(cache.path(oid)).st_size for oid in todo}
        alone = [o for o, n in sizes.items() if n >= self.pack_threshold or o.endswith(".dir")]
        small = [(o, n) for o, n in sizes.items() if n < self.pack_threshold and o not in alone]
        meter = _Meter(progress)
        units = [partial(self._send_pack, cache, g, meter) for g in group(small, self.pack_size)]
        units += [partial(self._send_object, cache, oid, meter) for oid in alone]
        if start is not None:
            start(sum(sizes.values()))
        self._run(units, out)
        self._write(self._key("done", root_oid), json.dumps({"objects": len(wanted)}).encode())
        return _finish(out, began)

    def pull(
        self,
        cache: ObjectCache,
        root_oid: str,
        progress: Progress | None = None,
        *,
        start: Progress | None = None,
    ) -> Transfer:
        """Bring ``root_oid`` and every object it lists into ``cache`` (not the
        workspace); each object's hash is checked first. A tree enters last, so a
        tree in the cache means its pull finished."""
        began = time.perf_counter()
        _check_oid(root_oid)
        out = Transfer("pull", root_oid)
        is_tree = root_oid.endswith(".dir")
        tree = None
        if is_tree:
            tree = cache.read_bytes(root_oid) if cache.has(root_oid) else self._get_tree(root_oid)
        wanted = _members(root_oid, tree)
        todo = cache.missing(wanted)
        out.skipped = len(wanted) - len(todo)
        if not todo:
            return _finish(out, began, start)
        tree_todo = is_tree and root_oid in todo  # the tree enters the cache last
        fetch = [oid for oid in todo if not (tree_todo and oid == root_oid)]
        held = self._holdings() if fetch else _Holdings({}, {})
        if absent := [oid for oid in fetch if oid not in held]:
            raise ResourceNotFound(
                f"Remote {self.url} lacks {_listing(absent)} of {root_oid}; nothing was "
                "pulled. Push them from a cache that has them."
            )
        by_pack: dict[str, list[str]] = {}
        for oid in fetch:
            if oid in held.packed:
                by_pack.setdefault(held.packed[oid].pack_id, []).append(oid)
        single = [oid for oid in fetch if oid not in held.packed]
        meter = _Meter(progress)
        units = [
            partial(self._fetch_pack, cache, self._indexes[pack], oids, meter)
            for pack, oids in by_pack.items()
        ]
        units += [partial(self._fetch_object, cache, oid, meter) for oid in single]
        if start is not None:
            packed = sum(held.packed[o].objects[o][1] for o in fetch if o in held.packed)
            start(packed + sum(held.loose[o] for o in single) + (len(tree) if tree_todo else 0))
        self._run(units, out)
        if tree_todo and tree is not None:
            cache.add_bytes(tree, root_oid)
            meter(len(tree))
            out._add("loose", 1, len(tree))
        return _finish(out, began)

    # --- units of work (run on worker threads) -----------------------------------

    def _send_pack(
        self, cache: ObjectCache, oids: list[str], meter: _Meter
    ) -> tuple[str, int, int]:
        pack, index = build_pack((oid, _read_intact(cache, oid)) for oid in oids)
        self._write(self._key("packs", f"{index.pack_id}.pack"), pack, check=True)
        self._write(self._key("packs", f"{index.pack_id}.idx"), index.to_bytes())
        self._indexes[index.pack_id] = index
        meter(index.size)
        return "pack", len(oids), index.size

    def _send_object(self, cache: ObjectCache, oid: str, meter: _Meter) -> tuple[str, int, int]:
        if not cache.verify(oid):
            raise _corrupt_local(cache, oid)
        path, key = cache.path(oid), self._object_key(oid)
        size, relay = path.stat().st_size, _Relay(meter)
        with self._remote_errors(f"uploading {oid}"), self._landing(key) as target:
            self.fs.put_file(str(path), target, callback=Callback(hooks={"r": relay}))
        meter(size - relay.sent)
        self._check_size(key, size)
        return "loose", 1, size

    def _fetch_pack(
        self, cache: ObjectCache, index: PackIndex, oids: list[str], meter: _Meter
    ) -> tuple[str, int, int]:
        key = self._key("packs", f"{index.pack_id}.pack")
        wanted = [(oid, *index.objects[oid]) for oid in oids]
        needed = sum(length for _, _, length in wanted)
        spans = (
            [(0, index.size, sorted(wanted, key=lambda w: w[1]))]
            if 2 * needed >= index.size  # most of the pack: one GET of all of it
            else coalesce(wanted, _RANGE_GAP)
        )
        with self._remote_errors(f"reading pack {index.pack_id}"):
            blobs = self.fs.cat_ranges(
                [key] * len(spans), [s[0] for s in spans], [s[1] for s in spans]
            )
        for (begin, _, members), blob in zip(spans, blobs, strict=True):
            for oid, offset, length in members:
                data = blob[offset - begin : offset - begin + length]
                if not _intact(oid, data):
                    raise ArtifactIntegrityError(
                        f"Object {oid} in {self.url}/packs/{index.pack_id}.pack is corrupt "
                        f"(read {len(data)} of {length} bytes, hash mismatch); it was not stored"
                    )
                cache.add_bytes(data, oid)
                meter(length)
        return "pack", len(oids), needed

    def _fetch_object(self, cache: ObjectCache, oid: str, meter: _Meter) -> tuple[str, int, int]:
        tmp, relay = cache._tmp(), _Relay(meter)  # the cache's atomic write: temp, commit
        try:
            with self._remote_errors(f"reading object {oid}", disk=f"the data cache {cache.root}"):
                self.fs.get_file(self._object_key(oid), tmp, callback=Callback(hooks={"r": relay}))
            size = os.path.getsize(tmp)
            meter(size - relay.sent)
            if hash_file(tmp) != oid:
                raise ArtifactIntegrityError(
                    f"Object {oid} on remote {self.url} is corrupt (its {size} bytes do not "
                    "hash to its id); it was not stored"
                )
            cache._commit(tmp, oid)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return "loose", 1, size

    def _run(self, units: list[Callable[[], tuple[str, int, int]]], out: Transfer) -> None:
        if not units:
            return
        with ThreadPoolExecutor(min(self.jobs, len(units))) as pool:
            futures = [pool.submit(unit) for unit in units]
            try:
                for future in as_completed(futures):
                    out._add(*future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    # --- talking to the remote ---------------------------------------------------

    def _key(self, *parts: str) -> str:
        return "/".join((self._base, *parts))

    def _object_key(self, oid: str) -> str:
        return self._key("objects", oid[:2], oid[2:])

    @contextlib.contextmanager
    def _remote_errors(self, doing: str, disk: str = "") -> Iterator[None]:
        """Turn a filesystem's failure into a modelyard error naming the remote
        (``disk`` names what fills up when bytes land locally, the remote if empty)."""
        try:
            yield
        except (ModelyardError, TypeError, AttributeError):
            raise
        except FileNotFoundError as exc:
            raise ResourceNotFound(f"Not found on remote {self.url} while {doing}: {exc}") from exc
        except PermissionError as exc:
            raise StoreUnavailable(
                f"Remote {self.url} refused access while {doing}: {exc}. "
                "Check the credentials and the bucket or folder permissions."
            ) from exc
        except OSError as exc:
            if storage_full(exc):
                raise StorageFull(
                    f"No space left on {disk or f'remote {self.url}'} while {doing}: "
                    f"{exc.strerror}. What arrived is kept; free space and retry."
                ) from exc
            raise StoreUnavailable(f"Cannot use remote {self.url} while {doing}: {exc}") from exc
        except Exception as exc:  # botocore, aiohttp...: no common base to import
            raise StoreUnavailable(f"Cannot reach remote {self.url} while {doing}: {exc}") from exc

    @contextlib.contextmanager
    def _landing(self, key: str) -> Iterator[str]:
        """Where to write ``key``'s bytes: ``key`` itself on an object store (a PUT
        is atomic), a temporary file renamed onto ``key`` in a local folder."""
        if not self._local:
            yield key
            return
        tmp = self._key("tmp", new_id())
        self._mkdirs(posixpath.dirname(tmp))
        try:
            yield tmp
            self._mkdirs(posixpath.dirname(key))
            self.fs.mv(tmp, key)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.rm(tmp)
            raise

    def _mkdirs(self, folder: str) -> None:
        if folder not in self._made:
            self.fs.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def _write(self, key: str, data: bytes, *, check: bool = False) -> None:
        with self._remote_errors(f"writing {key}"), self._landing(key) as target:
            self.fs.pipe_file(target, data)
        if check:
            self._check_size(key, len(data))

    def _check_size(self, key: str, expected: int) -> None:
        """Confirm what landed; a short object is removed, so a re-run sends it again."""
        with self._remote_errors(f"checking {key}"):
            landed = self.fs.info(key)["size"]
            if landed != expected:
                self.fs.rm(key)
        if landed != expected:
            raise ArtifactIntegrityError(
                f"Remote {self.url} stored {landed} of {expected} bytes at {key}; "
                "it was removed, push again"
            )

    def _pushed(self, root_oid: str) -> bool:
        with self._remote_errors(f"looking for done/{root_oid}"):
            return bool(self.fs.exists(self._key("done", root_oid)))

    def _get_tree(self, oid: str) -> bytes:
        with self._remote_errors(f"reading tree {oid}"):
            try:
                data = self.fs.cat_file(self._object_key(oid))
            except FileNotFoundError as exc:
                raise ResourceNotFound(
                    f"Remote {self.url} has no {oid} ({exc}); push it there first"
                ) from exc
        if not _intact(oid, data):
            raise ArtifactIntegrityError(f"Tree {oid} on remote {self.url} is corrupt; not stored")
        return data

    def _holdings(self) -> _Holdings:
        """What the remote holds: one listing of packs/, a GET per index not read
        before (all at once), one paginated listing of objects/."""
        with self._remote_errors("listing what it holds"):
            try:
                names = [posixpath.basename(p) for p in self.fs.find(self._key("packs"))]
                found = self.fs.find(self._key("objects"), detail=True)
            except FileNotFoundError:
                if not self._local:  # an object store: the bucket itself is missing
                    raise
                names, found = [], {}
            packs = {n.removesuffix(".pack") for n in names if n.endswith(".pack")}
            complete = {n.removesuffix(".idx") for n in names if n.endswith(".idx")} & packs
            fresh = [self._key("packs", f"{p}.idx") for p in complete - self._indexes.keys()]
            docs = self.fs.cat(fresh) if fresh else {}
        for path, data in docs.items():
            pid = posixpath.basename(path).removesuffix(".idx")
            self._indexes[pid] = PackIndex.from_bytes(pid, data, f"{self.url}/packs/{pid}.idx")
        packed = {
            oid: self._indexes[p] for p in sorted(complete) for oid in self._indexes[p].objects
        }
        prefix = len(self._fs_path(self._key("objects"))) + 1
        loose = {}
        for path, info in found.items():
            oid = self._fs_path(path)[prefix:].replace("/", "", 1)
            if is_oid(oid):
                loose[oid] = int(info["size"])
        return _Holdings(packed, loose)

    def _fs_path(self, path: str) -> str:
        return self.fs._strip_protocol(path).rstrip("/")


# --- helpers ------------------------------------------------------------------------


def _check_oid(oid: object) -> None:
    if not isinstance(oid, str) or not is_oid(oid):
        raise InvalidParameter(
            f"{oid!r} is not an object id: expected 32 hex digits (a file) or 32 hex digits "
            "and '.dir' (a tree)"
        )


def _members(root_oid: str, tree: bytes | None) -> list[str]:
    """Every distinct object ``root_oid`` stands for, in tree order, itself last."""
    if tree is None:
        return [root_oid]
    return [*dict.fromkeys(e.oid for e in Tree.from_bytes(tree).entries), root_oid]


def _intact(oid: str, data: bytes) -> bool:
    return hash_bytes(data) == oid.removesuffix(".dir")


def _read_intact(cache: ObjectCache, oid: str) -> bytes:
    data = cache.read_bytes(oid)
    if not _intact(oid, data):
        raise _corrupt_local(cache, oid)
    return data


def _corrupt_local(cache: ObjectCache, oid: str) -> ArtifactIntegrityError:
    return ArtifactIntegrityError(
        f"Object {oid} in the data cache {cache.root} is corrupt (its bytes no longer "
        "match its id); it was not pushed. Add the file it came from again."
    )


def _listing(oids: list[str]) -> str:
    more = f" and {len(oids) - _SHOWN} more" if len(oids) > _SHOWN else ""
    return f"{len(oids)} object(s) ({', '.join(oids[:_SHOWN])}{more})"


def _finish(out: Transfer, began: float, start: Progress | None = None) -> Transfer:
    """Stamp the duration; ``start`` is told 0 when the call had nothing to move."""
    if start is not None:
        start(0)
    out.seconds = time.perf_counter() - began
    return out


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
