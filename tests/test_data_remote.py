"""Data remotes: push and pull content-addressed objects to a folder and to S3 (moto,
over the wire). Requests are counted where they happen: botocore's ``before-send``
event for S3, every call on the filesystem object for a folder."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import fsspec
import pytest

from infra.ports import free_port
from modelyard.core.errors import (
    ArtifactIntegrityError,
    InvalidParameter,
    ResourceNotFound,
    StoreUnavailable,
)
from modelyard.datasets.cache import ObjectCache
from modelyard.datasets.remote import Remote
from modelyard.datasets.tree import Entry, Tree

SRC = str(Path(__file__).resolve().parents[1] / "src")
SMALL_PACKS = {"pack_threshold": 64 << 10, "pack_size": 256 << 10}


# --- helpers ------------------------------------------------------------------------


def make_tree(cache: ObjectCache, sizes: list[int], seed: int = 0) -> tuple[str, dict[str, bytes]]:
    """A tree of random files of ``sizes`` in ``cache``; returns (tree id, path -> bytes)."""
    rng = random.Random(seed)
    files = {f"d{i % 7}/f{i:05}.bin": rng.randbytes(size) for i, size in enumerate(sizes)}
    entries = tuple(Entry(p, cache.add_bytes(b), len(b)) for p, b in sorted(files.items()))
    tree = Tree(entries)
    return cache.add_bytes(tree.to_bytes(), tree.oid), files


def tree_of(cache: ObjectCache, files: dict[str, bytes]) -> str:
    tree = Tree(tuple(Entry(p, cache.add_bytes(b), len(b)) for p, b in sorted(files.items())))
    return cache.add_bytes(tree.to_bytes(), tree.oid)


def assert_same_files(cache: ObjectCache, root: str, files: dict[str, bytes]) -> None:
    tree = Tree.from_bytes(cache.read_bytes(root))
    assert {e.path for e in tree.entries} == set(files)
    for entry in tree.entries:
        assert cache.read_bytes(entry.oid) == files[entry.path], entry.path


def remote_files(url: str) -> dict[str, int]:
    """Every file under the remote (relative path -> size), read with a fresh fs."""
    fs, base = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    found = fs.find(base, detail=True)
    return {path[len(base) + 1 :]: info["size"] for path, info in found.items()}


def packed_oids(url: str) -> dict[str, set[str]]:
    """pack id -> the object ids its index lists."""
    fs, base = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    out = {}
    for name in remote_files(url):
        if name.startswith("packs/") and name.endswith(".idx"):
            doc = json.loads(fs.cat_file(f"{base}/{name}"))
            out[name[6:-4]] = {oid for oid, _, _ in doc["objects"]}
    return out


class CountingFS:
    """A filesystem proxy recording every public call made through it (name, args)."""

    def __init__(self, fs) -> None:
        self._fs, self.calls = fs, []

    def __getattr__(self, name):
        attr = getattr(self._fs, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def counted(*args, **kwargs):
            self.calls.append((name, args))
            return attr(*args, **kwargs)

        return counted


def counted_remote(url: str, **options) -> tuple[Remote, list]:
    """A Remote whose requests are recorded: S3 ones as they go on the wire, a
    folder's as calls on its filesystem object."""
    if url.startswith("s3://"):
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        log: list = []
        fs.s3.meta.events.register(
            "before-send.s3", lambda request, **_: log.append((request.method, request.url))
        )
        return Remote(url, fs=fs, **options), log
    counting = CountingFS(fsspec.filesystem("file", skip_instance_cache=True))
    return Remote(url, fs=counting, **options), counting.calls


@pytest.fixture(params=["folder", "s3"])
def remote_url(request, tmp_path) -> str:
    if request.param == "folder":
        return str(tmp_path / "remote")
    return request.getfixturevalue("s3_artifacts")


# --- round trip, no-ops, packs --------------------------------------------------------


def test_round_trip_is_byte_exact(remote_url, tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    rng = random.Random(1)
    sizes = [rng.randrange(1, 4000) for _ in range(150)] + [0, 100_000, 200_000]
    root, files = make_tree(cache, sizes)
    files["copy/same.bin"] = files["d0/f00000.bin"]  # same content twice: one object
    root = tree_of(cache, files)
    unique = len({*map(bytes, files.values())})

    totals, moved = [], []
    sent = Remote(remote_url, **SMALL_PACKS).push(cache, root, moved.append, start=totals.append)
    assert sent.objects == unique + 1  # the tree too
    assert sent.loose == 3 and sent.packs >= 2  # two large objects and the tree alone
    assert totals == [sent.bytes] and sum(moved) == sent.bytes
    assert sent.bytes == sum(len(b) for b in {*map(bytes, files.values())}) + len(
        cache.read_bytes(root)
    )
    layout = remote_files(remote_url)
    assert f"done/{root}" in layout
    assert sum(n.startswith("packs/") for n in layout) == 2 * sent.packs
    assert sum(n.startswith("objects/") for n in layout) == sent.loose

    fresh = ObjectCache(tmp_path / "fresh")
    totals, moved = [], []
    got = Remote(remote_url).pull(fresh, root, moved.append, start=totals.append)
    assert (got.objects, got.bytes, got.skipped) == (unique + 1, sent.bytes, 0)
    assert totals == [got.bytes] and sum(moved) == got.bytes
    assert_same_files(fresh, root, files)
    assert all(fresh.verify(oid) for oid in fresh.iter_oids())
    assert Remote(remote_url).has(root)
    assert not Remote(remote_url).has("0" * 32 + ".dir")
    assert Remote(remote_url).has(cache.add_bytes(files["d0/f00000.bin"]))  # a file object
    assert not Remote(remote_url).has(cache.add_bytes(b"never pushed"))


def test_noop_push_and_pull_cost_at_most_one_request(remote_url, tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    root, files = make_tree(cache, [500] * 500 + [80_000] * 2)
    Remote(remote_url, **SMALL_PACKS).push(cache, root)

    remote, log = counted_remote(remote_url)
    again = remote.push(cache, root)
    assert again.noop and again.objects == 0
    assert len(log) == 1, log  # HEAD done/<root> (S3), exists() (folder)

    log.clear()
    totals = []
    pulled = remote.pull(cache, root, start=totals.append)  # the cache holds it all
    assert pulled.noop and pulled.skipped == 500 + 2 + 1 and totals == [0]
    assert log == []


def test_small_files_travel_in_packs(remote_url, tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    root, files = make_tree(cache, [1000] * 800)
    remote, log = counted_remote(remote_url, pack_threshold=16 << 10, pack_size=128 << 10)
    sent = remote.push(cache, root)
    assert sent.objects == 801 and sent.packs == 7 and sent.loose == 1  # 131 objects a pack
    assert len(remote_files(remote_url)) == 2 * 7 + 1 + 1  # packs + indexes, tree, marker
    if remote_url.startswith("s3://"):
        puts = [r for r in log if r[0] == "PUT"]
        assert len(puts) == 2 * 7 + 1 + 1
        assert len(log) < 40  # listings and size checks included, for 800 objects

    fresh = ObjectCache(tmp_path / "fresh")
    reader, log = counted_remote(remote_url)
    got = reader.pull(fresh, root)
    assert got.objects == 801 and got.packs == 7
    assert_same_files(fresh, root, files)
    if remote_url.startswith("s3://"):
        assert len(log) < 25, log


def test_a_partial_pull_reads_byte_ranges_of_a_pack(tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    url = str(tmp_path / "remote")
    root, files = make_tree(cache, [2000] * 400)
    Remote(url, pack_threshold=64 << 10, pack_size=4 << 20).push(cache, root)
    (pack_id,) = packed_oids(url)
    few = {p: files[p] for p in sorted(files)[::150]}  # 3 files far apart in the pack
    subset = tree_of(cache, few)
    Remote(url).push(cache, subset)

    remote, log = counted_remote(url)
    got = remote.pull(ObjectCache(tmp_path / "fresh"), subset)
    assert got.objects == 4 and got.bytes == 3 * 2000 + len(cache.read_bytes(subset))
    (ranges,) = [args for name, args in log if name == "cat_ranges"]
    paths, starts, ends = ranges
    assert all(p.endswith(f"{pack_id}.pack") for p in paths)
    assert sum(e - s for s, e in zip(starts, ends, strict=True)) == 3 * 2000  # not 800 KB


# --- interruptions --------------------------------------------------------------------

KILLED_PUSH = textwrap.dedent(
    """
    import os, signal, sys
    from modelyard.datasets.cache import ObjectCache
    from modelyard.datasets.remote import Remote

    cache, url, root, limit = sys.argv[1:]
    moved = 0

    def progress(n):
        global moved
        moved += n
        if moved >= int(limit):
            os.kill(os.getpid(), signal.SIGKILL)

    Remote(url, jobs=4, pack_threshold=64 << 10, pack_size=256 << 10).push(
        ObjectCache(cache), root, progress
    )
    """
)


def test_a_killed_push_resumes_without_resending(tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    url = str(tmp_path / "remote")
    rng = random.Random(2)
    sizes = [rng.randrange(1000, 6000) for _ in range(600)] + [150_000] * 6
    root, files = make_tree(cache, sizes)
    total = sum(sizes) + len(cache.read_bytes(root))
    child = subprocess.run(
        [sys.executable, "-c", KILLED_PUSH, str(cache.root), url, root, str(total // 2)],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    layout = remote_files(url)
    assert f"done/{root}" not in layout
    before = packed_oids(url)
    arrived = set().union(*before.values()) | {
        n[8:10] + n[11:] for n in layout if n.startswith("objects/")
    }
    assert arrived  # the child got some way

    again = Remote(url, **SMALL_PACKS).push(cache, root)
    assert again.skipped == len(arrived) and again.objects == 607 - len(arrived)
    arrived_bytes = sum(cache.path(oid).stat().st_size for oid in arrived)
    assert again.bytes + arrived_bytes == total  # every byte sent once, in all
    new_packs = {p: oids for p, oids in packed_oids(url).items() if p not in before}
    assert not set().union(set(), *new_packs.values()) & arrived

    fresh = ObjectCache(tmp_path / "fresh")
    Remote(url).pull(fresh, root)
    assert_same_files(fresh, root, files)


class Interrupted(Exception):
    pass


def test_an_interrupted_pull_resumes_where_it_stopped(remote_url, tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    root, files = make_tree(cache, [3000] * 300 + [100_000] * 4)
    Remote(remote_url, **SMALL_PACKS).push(cache, root)
    fresh = ObjectCache(tmp_path / "fresh")
    moved = []

    def stop_halfway(n: int) -> None:
        moved.append(n)
        if sum(moved) > 600_000:
            raise Interrupted

    with pytest.raises(Interrupted):
        Remote(remote_url, jobs=2).pull(fresh, root, stop_halfway)
    assert not fresh.has(root)  # a tree enters last: in the cache means complete
    kept = set(fresh.iter_oids())
    assert 0 < len(kept) < 304

    rest = Remote(remote_url).pull(fresh, root)
    assert rest.skipped == len(kept) and rest.objects == 305 - len(kept)
    assert_same_files(fresh, root, files)
    assert not list((fresh.root / "tmp").iterdir())


# --- integrity and errors -------------------------------------------------------------


def test_a_corrupt_remote_object_is_refused(remote_url, tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    root, files = make_tree(cache, [2000] * 50 + [200_000])
    Remote(remote_url, **SMALL_PACKS).push(cache, root)
    fs, base = fsspec.core.url_to_fs(remote_url, skip_instance_cache=True)
    ((pack_id, _),) = packed_oids(remote_url).items()
    index = json.loads(fs.cat_file(f"{base}/packs/{pack_id}.idx"))
    victim, offset, _ = index["objects"][7]
    original = fs.cat_file(f"{base}/packs/{pack_id}.pack")
    pack = bytearray(original)
    pack[offset] ^= 0xFF
    fs.pipe_file(f"{base}/packs/{pack_id}.pack", bytes(pack))

    fresh = ObjectCache(tmp_path / "fresh")
    with pytest.raises(ArtifactIntegrityError, match=f"{victim}.*corrupt"):
        Remote(remote_url, jobs=1).pull(fresh, root)
    assert not fresh.has(victim) and not fresh.has(root)
    assert all(fresh.verify(oid) for oid in fresh.iter_oids())

    fs.pipe_file(f"{base}/packs/{pack_id}.pack", bytes(pack[:offset]))  # truncated
    with pytest.raises(ArtifactIntegrityError, match=victim):
        Remote(remote_url, jobs=1).pull(ObjectCache(tmp_path / "fresh2"), root)

    fs.pipe_file(f"{base}/packs/{pack_id}.pack", original)
    large = cache.add_bytes(files["d1/f00050.bin"])
    key = f"{base}/objects/{large[:2]}/{large[2:]}"
    fs.pipe_file(key, b"x" + fs.cat_file(key)[1:])
    other = ObjectCache(tmp_path / "other")
    with pytest.raises(ArtifactIntegrityError, match=f"{large}.*corrupt"):
        Remote(remote_url).pull(other, root)
    assert not other.has(large) and not list((other.root / "tmp").iterdir())


def test_objects_missing_on_the_remote_are_named_before_anything_moves(remote_url, tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    root, files = make_tree(cache, [1000] * 300 + [100_000])
    Remote(remote_url, **SMALL_PACKS).push(cache, root)
    fs, base = fsspec.core.url_to_fs(remote_url, skip_instance_cache=True)
    pack_id = next(iter(packed_oids(remote_url)))
    fs.rm(f"{base}/packs/{pack_id}.pack")
    large = cache.add_bytes(files["d6/f00300.bin"])
    fs.rm(f"{base}/objects/{large[:2]}/{large[2:]}")

    fresh = ObjectCache(tmp_path / "fresh")
    with pytest.raises(ResourceNotFound) as err:
        Remote(remote_url).pull(fresh, root)
    message = str(err.value)
    lost = 1 + len(packed_oids(remote_url)[pack_id])
    assert f"Remote {remote_url} lacks {lost} object(s)" in message
    assert f"and {lost - 5} more) of {root}" in message
    assert list(fresh.iter_oids()) == []
    assert Remote(remote_url).has(root)  # the marker says so: pushes trust it
    fs.rm(f"{base}/done/{root}")
    assert not Remote(remote_url).has(root)
    again = Remote(remote_url, **SMALL_PACKS).push(cache, root)  # repairs exactly the loss
    assert again.objects == lost and again.skipped == 302 - lost
    Remote(remote_url).pull(fresh, root)
    assert_same_files(fresh, root, files)


def test_a_push_sends_nothing_the_cache_cannot_vouch_for(tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    url = str(tmp_path / "remote")
    root, files = make_tree(cache, [1000] * 20 + [100_000])
    gone = cache.add_bytes(files["d3/f00003.bin"])
    cache.remove(gone)
    with pytest.raises(ResourceNotFound, match=f"lacks 1 object.*{gone}"):
        Remote(url).push(cache, root)
    assert remote_files(url) == {}

    cache.add_bytes(files["d3/f00003.bin"])
    bad = cache.add_bytes(files["d4/f00004.bin"])
    rotten = cache.path(bad)
    rotten.chmod(0o644)
    rotten.write_bytes(b"not what was added")
    with pytest.raises(ArtifactIntegrityError, match="corrupt.*not pushed"):
        Remote(url, jobs=1).push(cache, root)
    assert f"done/{root}" not in remote_files(url)
    assert not any(bad in oids for oids in packed_oids(url).values())


class ShortWrites(CountingFS):
    """A store that loses the last byte of every large write."""

    def pipe_file(self, path, data, **kwargs):
        return self._fs.pipe_file(path, data[:-1] if len(data) > 10_000 else data, **kwargs)


def test_a_short_upload_is_caught_and_removed(tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    root, _ = make_tree(cache, [2000] * 20)
    url = str(tmp_path / "remote")
    lossy = Remote(url, fs=ShortWrites(fsspec.filesystem("file")))
    with pytest.raises(ArtifactIntegrityError, match="stored 39999 of 40000 bytes"):
        lossy.push(cache, root)
    layout = remote_files(url)
    assert not [n for n in layout if n.startswith("packs/")] and f"done/{root}" not in layout
    again = Remote(url).push(cache, root)  # the 20 files go again, in one pack
    assert again.packs == 1 and again.objects - again.loose == 20


FULL_DISK = textwrap.dedent(
    """
    import json, resource, signal, sys
    from modelyard.core.errors import StorageFull
    from modelyard.datasets.cache import ObjectCache
    from modelyard.datasets.remote import Remote

    cache, fresh, url, empty, root = sys.argv[1:]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
    out = {}
    try:
        Remote(url).pull(ObjectCache(fresh), root)
    except StorageFull as exc:
        out["pull"] = str(exc)
    try:
        Remote(empty, pack_threshold=64 << 10, pack_size=256 << 10).push(ObjectCache(cache), root)
    except StorageFull as exc:
        out["push"] = str(exc)
    print(json.dumps(out))
    """
)


def test_a_full_disk_says_which_one(tmp_path):
    cache = ObjectCache(tmp_path / "cache")
    root, files = make_tree(cache, [2000] * 10 + [200_000])
    url, empty, fresh = (str(tmp_path / n) for n in ("remote", "empty", "fresh"))
    Remote(url, **SMALL_PACKS).push(cache, root)
    child = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(cache.root), fresh, url, empty, root],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout)
    assert out["pull"].startswith(f"No space left on the data cache {fresh} while reading")
    assert out["push"].startswith(f"No space left on remote {empty} while uploading")
    large = cache.add_bytes(files["d3/f00010.bin"])
    assert not ObjectCache(fresh).has(large) and not list(Path(fresh, "tmp").iterdir())
    landed = remote_files(empty)  # the tree and the pack may have made it, whole
    assert f"objects/{large[:2]}/{large[2:]}" not in landed and f"done/{root}" not in landed
    assert not [n for n in landed if n.startswith("tmp/")]


def test_an_unreachable_s3_endpoint_names_the_url():
    url = "s3://some-bucket/data"
    options = {
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "key": "k",
        "secret": "s",
        "skip_instance_cache": True,
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }
    remote = Remote(url, storage_options=options)
    with pytest.raises(StoreUnavailable, match=f"Cannot reach remote {url}"):
        remote.has("0" * 32)
    with pytest.raises(StoreUnavailable, match=f"Cannot reach remote {url}"):
        remote.pull(ObjectCache("cache"), "0" * 32 + ".dir")


def test_a_missing_bucket_names_the_url(s3, tmp_path):
    url = "s3://modelyard-no-such-bucket/data"
    cache = ObjectCache(tmp_path / "cache")
    root, _ = make_tree(cache, [100] * 3)
    with pytest.raises(ResourceNotFound, match=f"{url}.*bucket does not exist"):
        Remote(url).push(cache, root)
    with pytest.raises(ResourceNotFound, match=f"{url}.*bucket does not exist"):
        Remote(url).pull(ObjectCache(tmp_path / "fresh"), root)


def test_bad_arguments_are_refused_clearly(tmp_path):
    with pytest.raises(InvalidParameter, match="remote URL"):
        Remote("")
    with pytest.raises(InvalidParameter, match="jobs must be a positive integer, got 0"):
        Remote(str(tmp_path), jobs=0)
    with pytest.raises(InvalidParameter, match="Cannot open remote nope://x"):
        Remote("nope://x")
    with pytest.raises(InvalidParameter, match="'abc' is not an object id"):
        Remote(str(tmp_path)).push(ObjectCache(tmp_path / "c"), "abc")
    with pytest.raises(ResourceNotFound, match="not in the data cache"):
        Remote(str(tmp_path)).push(ObjectCache(tmp_path / "c"), "0" * 32 + ".dir")
