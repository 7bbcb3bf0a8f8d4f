"""The artifact proxy ``/api/2.0/mlflow-artifacts/artifacts``: files under the server's
artifact root, by path, for MLflow's ``mlflow-artifacts:/`` URIs and modelyard's own
remote client alike.

    PUT    .../artifacts/<path>       the raw body becomes the file (atomically)
    GET    .../artifacts/<path>       the file's bytes, streamed and checked
    DELETE .../artifacts/<path>       removes a file or a folder
    GET    .../artifacts?path=<dir>   {"files": [{"path", "is_dir", "file_size"}]},
                                      paths relative to <dir>, no file_size for folders
"""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator, Iterator
from itertools import chain

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from modelyard.core.artifacts import ArtifactStore, check_relative_path
from modelyard.core.errors import InvalidParameter
from modelyard.server.deps import Artifacts

__all__ = ["router"]

router = APIRouter(prefix="/api/2.0/mlflow-artifacts/artifacts")

_CHUNK = 1 << 20


def _path(path: str) -> str:
    """The normalised relative path (escapes and the store's private names refused)."""
    return check_relative_path(path)


async def _read_up_to(chunks: AsyncIterator[bytes], size: int) -> bytes:
    """Up to ``size`` bytes from the request body (fewer only at its end)."""
    buf = bytearray()
    while len(buf) < size:
        try:
            buf += await chunks.__anext__()
        except StopAsyncIteration:
            break
    return bytes(buf)


def _body_in_thread(request: Request) -> Iterator[bytes]:
    """The request body as a blocking iterator, for a worker thread to consume."""
    chunks = request.stream().__aiter__()
    while block := anyio.from_thread.run(_read_up_to, chunks, _CHUNK):
        yield block


@router.put("/{path:path}")
async def upload(path: str, request: Request, store: Artifacts) -> dict:
    rel = _path(path)
    if not rel:
        raise InvalidParameter("Give the artifact's path after /mlflow-artifacts/artifacts/")
    await anyio.to_thread.run_sync(store.put_stream, _body_in_thread(request), rel)
    return {}


@router.get("/{path:path}")
async def download(path: str, store: Artifacts) -> StreamingResponse:
    rel = _path(path)
    chunks = store.open_verified(rel)
    # Read the first chunk before answering, so a missing file is a 404, not a cut stream;
    # a checksum mismatch found at the end cuts the stream, so the client sees an error.
    first = await anyio.to_thread.run_sync(next, chunks, b"")
    return StreamingResponse(chain([first], chunks), media_type="application/octet-stream")


@router.delete("/{path:path}")
def delete(path: str, store: Artifacts) -> dict:
    rel = _path(path)
    if not rel:
        raise InvalidParameter("Refusing to delete the whole artifact root; name a path")
    store.delete(rel)
    return {}


def _listing(store: ArtifactStore, rel: str) -> list[dict]:
    files = []
    for info in store.list(rel):
        entry: dict = {"path": posixpath.basename(info.path), "is_dir": info.is_dir}
        if not info.is_dir:
            entry["file_size"] = info.file_size
        files.append(entry)
    return files


@router.get("")
def list_artifacts(store: Artifacts, path: str = "") -> dict:
    return {"files": _listing(store, _path(path))}
