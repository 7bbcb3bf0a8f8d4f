"""Versioned data in a project folder: add, status, checkout, and their faults.

No database: the workspace is pointer files, the object cache and the stat cache,
all on the real filesystem of the test's folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelyard.core.errors import (
    ArtifactIntegrityError,
    InvalidParameter,
    InvalidState,
    ResourceNotFound,
)
from modelyard.datasets.cache import ObjectCache
from modelyard.datasets.hashing import hash_file
from modelyard.datasets.state import StatCache
from modelyard.datasets.workspace import Workspace


def make_ws(root: Path, links: tuple[str, ...] = ("reflink", "hardlink", "copy")) -> Workspace:
    (root / ".git").mkdir(exist_ok=True)  # the repository root marker
    home = root / ".modelyard" / "data"
    return Workspace(root, ObjectCache(home / "cache", links), StatCache(home / "state.db"))


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


FILES = {
    "a.csv": b"x,y\n1,2\n",
    "b.bin": os.urandom(50_000),
    "same-as-a.csv": b"x,y\n1,2\n",
    "sub/c.txt": b"hello",
}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return make_ws(tmp_path)


def test_add_writes_a_pointer_ignores_the_data_and_stores_each_content_once(ws, tmp_path):
    write_tree(tmp_path / "data", FILES)
    result = ws.add("data")

    pointer = yaml.safe_load((tmp_path / "data.yard").read_text())
    assert pointer["oid"] == result.oid and result.oid.endswith(".dir")
    assert pointer["files"] == 4 and pointer["size"] == sum(len(b) for b in FILES.values())
    assert pointer["path"] == "data" and pointer["algorithm"] == "xxh3-128"
    assert "/data" in (tmp_path / ".gitignore").read_text().splitlines()
    # Two files with the same bytes are one object; plus the tree itself.
    objects = list(ws.cache.iter_oids())
    assert len(objects) == 3 + 1
    assert result.stored == 3 and result.hashed == 4
    assert ws.cache.verify(result.oid)
    # Each object holds exactly its file's bytes.
    for rel, content in FILES.items():
        oid = hash_file(tmp_path / "data" / rel)
        assert ws.cache.path(oid).read_bytes() == content
        assert not os.access(ws.cache.path(oid), os.W_OK) or os.geteuid() == 0
        assert stat.S_IMODE(ws.cache.path(oid).stat().st_mode) & 0o222 == 0


def test_a_readd_of_unchanged_data_is_a_noop_that_reads_nothing(ws, tmp_path):
    write_tree(tmp_path / "data", FILES)
    first = ws.add("data")
    again = ws.add("data")
    assert again.unchanged and again.oid == first.oid
    assert again.hashed == 0 and again.stored == 0


def test_a_readd_hashes_only_the_changed_file(ws, tmp_path):
    write_tree(tmp_path / "data", FILES)
    first = ws.add("data")
    target = tmp_path / "data" / "sub" / "c.txt"
    target.unlink()  # a hardlinked file is read-only: replace it, as editors do
    target.write_bytes(b"hello, world")
    second = ws.add("data")
    assert not second.unchanged and second.oid != first.oid
    assert second.hashed == 1 and second.stored == 1
    # The first version is still complete in the cache.
    assert not ws.cache.missing([e.oid for e in ws.tree_of(ws.pointer_of("data")[1]).entries])
    assert ws.cache.has(first.oid)


def test_status_names_added_removed_and_modified_files(ws, tmp_path):
    write_tree(tmp_path / "data", FILES)
    ws.add("data")
    assert ws.status("data.yard").clean
    (tmp_path / "data" / "b.bin").unlink()
    (tmp_path / "data" / "new.txt").write_bytes(b"new")
    (tmp_path / "data" / "a.csv").unlink()
    (tmp_path / "data" / "a.csv").write_bytes(b"x,y\n9,9\n")
    changes = ws.status("data")
    assert changes.added == ["new.txt"]
    assert changes.removed == ["b.bin"]
    assert changes.modified == ["a.csv"]


def test_checkout_restores_the_tree_byte_exact_after_deletion(ws, tmp_path):
    write_tree(tmp_path / "data", FILES)
    ws.add("data")
    shutil.rmtree(tmp_path / "data")
    result = ws.checkout("data.yard")
    assert result.written == 4
    assert snapshot(tmp_path / "data") == FILES


def test_checkout_switches_between_versions(ws, tmp_path):
    write_tree(tmp_path / "data", FILES)
    ws.add("data")
    v1 = (tmp_path / "data.yard").read_text()
    (tmp_path / "data" / "extra.txt").write_bytes(b"v2 only")
    ws.add("data")
    (tmp_path / "data.yard").write_text(v1)  # git checkout of the old pointer
    result = ws.checkout("data")
    assert result.removed == 1 and snapshot(tmp_path / "data") == FILES


def test_checkout_keeps_unsaved_changes_unless_forced(tmp_path):
    ws = make_ws(tmp_path, ("copy",))
    write_tree(tmp_path / "data", FILES)
    ws.add("data")
    (tmp_path / "data" / "a.csv").write_bytes(b"unsaved work")
    with pytest.raises(InvalidState, match="in no saved version .*a.csv.*--force"):
        ws.checkout("data")
    assert (tmp_path / "data" / "a.csv").read_bytes() == b"unsaved work"
    ws.checkout("data", force=True)
    assert snapshot(tmp_path / "data") == FILES


def test_a_corrupted_cache_object_is_refused_without_a_remote(tmp_path):
    ws = make_ws(tmp_path, ("copy",))
    write_tree(tmp_path / "data", FILES)
    ws.add("data")
    shutil.rmtree(tmp_path / "data")
    victim = ws.cache.path(hash_file_bytes(FILES["b.bin"]))
    os.chmod(victim, 0o644)
    victim.write_bytes(b"bit rot" + FILES["b.bin"][7:])
    with pytest.raises(ArtifactIntegrityError, match="corrupted .*no remote"):
        ws.checkout("data")
    assert not (tmp_path / "data").exists()  # nothing half checked out


def test_a_corrupted_cache_object_is_fetched_again_when_a_source_has_it(tmp_path):
    ws = make_ws(tmp_path, ("copy",))
    write_tree(tmp_path / "data", FILES)
    ws.add("data")
    backup = tmp_path / "backup"
    shutil.copytree(ws.cache.root, backup)
    shutil.rmtree(tmp_path / "data")
    oid = hash_file_bytes(FILES["b.bin"])
    victim = ws.cache.path(oid)
    os.chmod(victim, 0o644)
    victim.write_bytes(b"x" * len(FILES["b.bin"]))
    fetched: list[str] = []

    def refetch(oids: list[str]) -> None:
        fetched.extend(oids)
        for o in oids:
            ws.cache.add_bytes((backup / o[:2] / o[2:]).read_bytes(), o)

    result = ws.checkout("data", refetch=refetch)
    assert fetched == [oid] and result.refetched == 1
    assert snapshot(tmp_path / "data") == FILES


def hash_file_bytes(content: bytes) -> str:
    from modelyard.datasets.hashing import hash_bytes

    return hash_bytes(content)


def test_paths_outside_the_repository_are_refused(ws, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text("a\n1\n")
    try:
        with pytest.raises(InvalidParameter, match="outside the repository"):
            ws.add(outside)
        with pytest.raises(InvalidParameter, match="outside the repository"):
            ws.add("../" + outside.name)
    finally:
        outside.unlink()
    assert not list(ws.cache.iter_oids())


def test_dangling_symlinks_are_named(ws, tmp_path):
    write_tree(tmp_path / "data", FILES)
    (tmp_path / "data" / "broken").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidParameter, match="broken is a dangling symlink"):
        ws.add("data")
    assert not (tmp_path / "data.yard").exists()
    (tmp_path / "lone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidParameter, match="lone is a dangling symlink"):
        ws.add("lone")


def test_the_cache_the_root_and_missing_paths_are_refused(ws, tmp_path):
    with pytest.raises(InvalidParameter, match="cache"):
        ws.add(".modelyard/data/cache")
    with pytest.raises(InvalidParameter, match="repository root"):
        ws.add(".")
    with pytest.raises(ResourceNotFound, match="No file or folder nope"):
        ws.add("nope")


def test_a_broken_pointer_file_gets_a_clear_error(ws, tmp_path):
    (tmp_path / "data.yard").write_text("oid: [unclosed\n")
    with pytest.raises(InvalidParameter, match="not a valid pointer file"):
        ws.checkout("data.yard")
    (tmp_path / "data.yard").write_text("oid: xyz\nsize: 1\nfiles: 1\npath: data\n")
    with pytest.raises(InvalidParameter, match="not an object id"):
        ws.checkout("data.yard")


@pytest.mark.skipif(sys.platform != "linux", reason="drops capabilities with setpriv")
def test_an_unreadable_file_is_named_not_a_traceback(tmp_path):
    """Root reads anything: as root, the command runs without the capabilities that
    bypass file permissions (util-linux's setpriv), so the kernel says no for real."""
    project = tmp_path / "project"
    write_tree(project / "data", FILES)
    (project / ".git").mkdir()
    secret = project / "data" / "b.bin"
    os.chmod(secret, 0)
    env = {**os.environ, "MODELYARD_HOME": str(project / ".modelyard"), "COLUMNS": "250"}
    cmd = [sys.executable, "-m", "modelyard.cli.main", "data", "add", "data"]
    if os.geteuid() == 0:
        drop = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *cmd]
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "b.bin: permission denied" in done.stderr.replace("\n", "")
    assert not (project / "data.yard").exists()
