"""The artifact store on a local folder and on S3 (a moto server over the wire)."""

from __future__ import annotations

import io
import os

import pytest

from modelyard.core.artifacts import open_artifact_store
from modelyard.core.errors import ArtifactIntegrityError, InvalidParameter, ResourceNotFound


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_artifact_store(str(tmp_path / "art"))
    return open_artifact_store(request.getfixturevalue("s3_artifacts"))


def test_round_trip_file_bytes_and_dir(store, tmp_path):
    payload = os.urandom(3 * (1 << 20) + 17)  # several chunks
    src = tmp_path / "model.bin"
    src.write_bytes(payload)
    assert store.put_file(src, "run/model.bin") == len(payload)
    store.put_bytes(b"hello", "run/notes/a.txt")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "x.txt").write_text("x")
    (tree / "sub" / "y.txt").write_text("y")
    assert store.put_dir(tree, "run/tree") == 2

    assert store.read_bytes("run/model.bin") == payload
    listing = store.list("run")
    assert [(f.path, f.is_dir) for f in listing] == [
        ("run/model.bin", False),
        ("run/notes", True),
        ("run/tree", True),
    ]
    assert listing[0].file_size == len(payload)
    assert sorted(f.path for f in store.walk("run/tree")) == ["sub/y.txt", "x.txt"]
    out = store.get_dir("run/tree", tmp_path / "out")
    assert (out / "sub" / "y.txt").read_text() == "y"
    assert store.get_file("run/model.bin", tmp_path / "dl.bin").read_bytes() == payload


def test_failed_upload_leaves_nothing_behind(store):
    class Exploding(io.RawIOBase):
        def __init__(self):
            self.sent = 0

        def read(self, n=-1):
            if self.sent > 2:
                raise OSError("disk went away")
            self.sent += 1
            return b"x" * 1024

    with pytest.raises(OSError, match="disk went away"):
        store.put_stream(Exploding(), "run/partial.bin")
    assert not store.exists("run/partial.bin")
    assert store.list("run") == []


def test_corrupt_artifact_is_refused_and_not_written(tmp_path):
    store = open_artifact_store(str(tmp_path / "art"))
    store.put_bytes(b"the real bytes", "m/weights.bin")
    (tmp_path / "art" / "m" / "weights.bin").write_bytes(b"tampered bytes")
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        store.get_file("m/weights.bin", tmp_path / "dl" / "weights.bin")
    assert not (tmp_path / "dl" / "weights.bin").exists()
    assert [p.name for p in (tmp_path / "dl").iterdir()] == []


def test_corrupt_artifact_on_s3_is_refused(s3_artifacts, tmp_path):
    store = open_artifact_store(s3_artifacts)
    store.put_bytes(b"the real bytes", "m/weights.bin")
    store.fs.pipe_file(store._full("m/weights.bin"), b"short")
    with pytest.raises(ArtifactIntegrityError, match="expected 14 bytes"):
        store.read_bytes("m/weights.bin")


@pytest.mark.parametrize("bad", ["../escape.txt", "a/../../b", "/etc/passwd"])
def test_paths_cannot_escape_the_root(store, bad):
    with pytest.raises(InvalidParameter, match="relative"):
        store.put_bytes(b"x", bad)


def test_missing_artifact_is_not_found(store, tmp_path):
    with pytest.raises(ResourceNotFound, match="No artifact"):
        store.read_bytes("nope.txt")
    with pytest.raises(ResourceNotFound):
        store.delete("nope.txt")


def test_delete_removes_file_and_sidecar(store):
    store.put_bytes(b"x", "d/a.txt")
    store.delete("d/a.txt")
    assert not store.exists("d/a.txt")
    assert store.list("d") == []
