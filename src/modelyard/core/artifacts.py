"""The artifact store: bytes under one root, on any fsspec filesystem (local, S3, ...).

Uploads are atomic: bytes go to a temporary key first and are moved into place
last, so a reader never sees half a file. Each file gets a small sidecar with its
size and SHA-256; downloads are checked against it and refused on mismatch.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from modelyard.core.errors import (
    ArtifactIntegrityError,
    InvalidParameter,
    ResourceNotFound,
    StorageFull,
)
from modelyard.core.ids import new_id

__all__ = ["ArtifactStore", "FileInfo", "open_artifact_store"]

_CHUNK = 1 << 20
_SIDE = ".my-meta"
_TMP_DIR = ".my-tmp"


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str  # relative to the listed prefix's root
    is_dir: bool
    file_size: int | None


def _sidecar(path: str) -> str:
    head, name = posixpath.split(path)
    return posixpath.join(head, f".{name}{_SIDE}")


def _hidden(name: str) -> bool:
    return name.endswith(_SIDE) or name == _TMP_DIR


def check_relative_path(path: str) -> str:
    """Normalise an artifact path and refuse absolute paths and '..' escapes."""
    norm = posixpath.normpath(path.replace("\\", "/")).lstrip("/") if path else ""
    if norm in (".", ""):
        return ""
    if norm.startswith("..") or "/../" in f"/{norm}/" or path.startswith("/"):
        raise InvalidParameter(
            f"Invalid artifact path {path!r}: it must be relative and stay inside the run"
        )
    if any(_hidden(part) for part in norm.split("/")):
        raise InvalidParameter(
            f"Invalid artifact path {path!r}: {_TMP_DIR!r} and names ending with {_SIDE!r} "
            "are reserved by the artifact store"
        )
    return norm


class ArtifactStore:
    """Files under ``root`` (a local path or fsspec URL such as ``s3://bucket/prefix``).

    Example::

        store = open_artifact_store("s3://models/yard")
        store.put_file("model.onnx", "exp/1/run/artifacts/model.onnx")
        store.get_file("exp/1/run/artifacts/model.onnx", "/tmp/model.onnx")  # verified

    Paths given to the methods are relative to the root.
    """

    def __init__(self, root: str, fs: Any | None = None) -> None:
        import fsspec

        self.root = root.rstrip("/")
        if fs is None:
            fs, _ = fsspec.core.url_to_fs(self.root)
        self.fs = fs
        self.is_local = "file" in (
            fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        )
        self._base = self.fs._strip_protocol(self.root)
        if self.is_local:
            os.makedirs(self._base, exist_ok=True)

    def _full(self, path: str) -> str:
        rel = check_relative_path(path)
        return f"{self._base}/{rel}" if rel else self._base

    # -- writing -----------------------------------------------------------------
    def put_stream(self, stream: IO[bytes] | Iterator[bytes], path: str) -> int:
        """Write a byte stream to ``path`` atomically and return its size."""
        final = self._full(path)
        tmp = f"{self._base}/{_TMP_DIR}/{new_id()}"
        digest, size = hashlib.sha256(), 0
        chunks = iter(lambda: stream.read(_CHUNK), b"") if hasattr(stream, "read") else stream
        try:
            if self.is_local:
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
            with self.fs.open(tmp, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            meta = json.dumps({"size": size, "sha256": digest.hexdigest()}).encode()
            if self.is_local:
                os.makedirs(os.path.dirname(final), exist_ok=True)
            self.fs.pipe_file(_sidecar(final), meta)
            if self.is_local:
                os.replace(tmp, final)
            else:
                self.fs.mv(tmp, final)
        except BaseException as exc:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                raise StorageFull(
                    f"Could not store artifact {path!r} under {self.root}: {exc.strerror}. "
                    "Nothing was written; free space and retry."
                ) from exc
            raise
        return size

    def put_bytes(self, data: bytes, path: str) -> int:
        import io

        return self.put_stream(io.BytesIO(data), path)

    def put_file(self, local_path: str | os.PathLike, path: str) -> int:
        with open(local_path, "rb") as f:
            return self.put_stream(f, path)

    def put_dir(self, local_dir: str | os.PathLike, prefix: str) -> int:
        """Upload every file below ``local_dir`` under ``prefix``; returns the file count."""
        base = Path(local_dir)
        count = 0
        for file in sorted(p for p in base.rglob("*") if p.is_file()):
            self.put_file(file, posixpath.join(prefix, file.relative_to(base).as_posix()))
            count += 1
        return count

    # -- reading -----------------------------------------------------------------
    def _expected(self, full: str) -> dict | None:
        try:
            return json.loads(self.fs.cat_file(_sidecar(full)))
        except FileNotFoundError:
            return None

    def open_verified(self, path: str) -> Iterator[bytes]:
        """Stream a file's bytes; raises ArtifactIntegrityError at the end on mismatch."""
        full = self._full(path)
        if not self.fs.isfile(full):
            raise ResourceNotFound(f"No artifact at {path!r}")
        expected = self._expected(full)
        digest, size = hashlib.sha256(), 0
        with self.fs.open(full, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
        self._verify(path, expected, size, digest.hexdigest())

    @staticmethod
    def _verify(path: str, expected: dict | None, size: int, sha: str) -> None:
        if expected is None:
            return
        if expected["size"] != size or expected["sha256"] != sha:
            raise ArtifactIntegrityError(
                f"Artifact {path!r} is corrupt: expected {expected['size']} bytes with "
                f"sha256 {expected['sha256'][:12]}..., got {size} bytes with {sha[:12]}..."
            )

    def open_file(self, path: str) -> IO[bytes]:
        """A seekable handle on one file, for reading a part of it (one Parquet
        column); unlike ``open_verified`` it does not check the whole file's digest."""
        full = self._full(path)
        if not self.fs.isfile(full):
            raise ResourceNotFound(f"No artifact at {path!r}")
        return self.fs.open(full, "rb")

    def read_bytes(self, path: str) -> bytes:
        return b"".join(self.open_verified(path))

    def get_file(self, path: str, local_path: str | os.PathLike) -> Path:
        """Download and verify one file; the destination appears only if it is intact."""
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".my-dl-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.open_verified(path):
                    out.write(chunk)
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return dest

    def get_dir(self, prefix: str, local_dir: str | os.PathLike) -> Path:
        """Download every file under ``prefix`` (or the one file it names)."""
        dest = Path(local_dir)
        full = self._full(prefix)
        if self.fs.isfile(full):
            return self.get_file(prefix, dest / posixpath.basename(full))
        for info in self.walk(prefix):
            self.get_file(posixpath.join(prefix, info.path), dest / info.path)
        dest.mkdir(parents=True, exist_ok=True)
        return dest

    def list(self, prefix: str = "") -> list[FileInfo]:
        """Direct children of ``prefix`` with paths relative to the root."""
        full = self._full(prefix)
        try:
            entries = self.fs.ls(full, detail=True)
        except FileNotFoundError:
            return []
        rel = check_relative_path(prefix)
        out = []
        for e in entries:
            name = posixpath.basename(e["name"].rstrip("/"))
            if _hidden(name) or e["name"].rstrip("/") == full:
                continue
            is_dir = e["type"] == "directory"
            out.append(
                FileInfo(
                    posixpath.join(rel, name) if rel else name,
                    is_dir,
                    None if is_dir else e["size"],
                )
            )
        return sorted(out, key=lambda f: f.path)

    def walk(self, prefix: str = "") -> Iterator[FileInfo]:
        """Every file under ``prefix``, with paths relative to ``prefix``."""
        full = self._full(prefix)
        for path, info in sorted(self.fs.find(full, detail=True).items()):
            if any(_hidden(part) for part in path.split("/")):
                continue
            yield FileInfo(path[len(full) :].lstrip("/"), False, info["size"])

    def exists(self, path: str) -> bool:
        return self.fs.exists(self._full(path))

    def delete(self, path: str) -> None:
        full = self._full(path)
        if not self.fs.exists(full):
            raise ResourceNotFound(f"No artifact at {path!r}")
        if self.fs.isdir(full):
            self.fs.rm(full, recursive=True)
        else:
            self.fs.rm(full)
            if self.fs.exists(_sidecar(full)):
                self.fs.rm(_sidecar(full))

    def uri(self, path: str) -> str:
        rel = check_relative_path(path)
        return f"{self.root}/{rel}" if rel else self.root


def open_artifact_store(root: str) -> ArtifactStore:
    """The store for ``root``; names the extra to install when a scheme needs one."""
    scheme = root.split("://", 1)[0] if "://" in root else "file"
    if scheme in ("s3", "s3a"):
        try:
            import s3fs  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise InvalidParameter("S3 artifacts need: pip install 'modelyard[s3]'") from exc
    if scheme == "file" and not root.startswith("file://"):
        root = str(Path(root).expanduser().resolve())
    return ArtifactStore(root)
