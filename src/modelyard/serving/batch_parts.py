"""Batch prediction's files: the parts folder (one Parquet part per finished chunk,
and the progress file that lets ``--resume`` continue), the atomic Parquet writer,
and the merge of the parts into the output.

Split from ``batch`` so that module keeps the plan and the prediction; nothing here
knows about models beyond the fingerprint it stores."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
)
from modelyard.core.ids import now_ms
from modelyard.models.manifest import MANIFEST_FILE
from modelyard.models.package import LoadedModel

__all__ = ["BatchWarning", "ParquetSink", "PartsFolder", "merge_parts", "part_url"]

if TYPE_CHECKING:
    from modelyard.serving.batch import Chunk, ChunkJob, InputFile

PROGRESS_FILE = "progress.json"
_FORMAT = 1
_GROUP_ROWS = 1 << 20  # output row groups: at most this many rows ...
_GROUP_BYTES = 64 << 20  # ... or about this many bytes
_PART_RE = re.compile(r"^part-(\d+)\.parquet$")


class BatchWarning(UserWarning):
    """Something the caller should know that does not stop the job (parts discarded)."""


def _fs(url: str) -> tuple[Any, str]:
    return fsspec.core.url_to_fs(url)


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def _url(fs: Any, path: str) -> str:
    return path if _is_local(fs) else fs.unstrip_protocol(path)


class ParquetSink:
    """Tables in, one Parquet file out, written under a temporary name in the same
    folder and renamed into place by ``commit()`` (removed instead on error).

    Row groups hold up to ~1M rows or ~64 MB, whichever comes first; every table
    after the first is cast to the first one's schema. A ``part`` (read once, by the
    merge) skips dictionary encoding, which costs more time than it saves there."""

    def __init__(self, url: str, *, part: bool = False) -> None:
        self.url = url
        self.options = {"use_dictionary": False} if part else {}
        self.fs, self.path = _fs(url)
        head, name = posixpath.split(self.path)
        self.tmp = posixpath.join(head, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
        self.local = _is_local(self.fs)
        self.schema: pa.Schema | None = None
        self.rows = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._file: Any = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self.schema is None:
            self.schema = table.schema
            self.fs.makedirs(posixpath.dirname(self.path), exist_ok=True)
            target = self.tmp if self.local else self._open()
            self._writer = pq.ParquetWriter(target, self.schema, **self.options)
        elif not table.schema.equals(self.schema):
            table = _conform(table, self.schema)
        self._buffer.append(table)
        self._buffered += table.nbytes
        self.rows += table.num_rows
        if self._buffered >= _GROUP_BYTES or sum(t.num_rows for t in self._buffer) >= _GROUP_ROWS:
            self._flush()

    def _open(self) -> Any:
        self._file = self.fs.open(self.tmp, "wb")
        return self._file

    def _flush(self) -> None:
        if self._buffer and self._writer is not None:
            self._writer.write_table(pa.concat_tables(self._buffer), row_group_size=_GROUP_ROWS)
        self._buffer, self._buffered = [], 0

    def commit(self) -> None:
        if self._writer is None:
            raise InvalidState(f"Nothing was written to {self.url!r}")
        self._flush()
        self._writer.close()
        if self._file is not None:
            self._file.close()
        if self.local:
            os.replace(self.tmp, self.path)
        else:
            self.fs.mv(self.tmp, self.path)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
            if self._file is not None:
                self._file.close()
        with contextlib.suppress(FileNotFoundError, OSError):
            if self.fs.exists(self.tmp):
                self.fs.rm(self.tmp)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is not None:
            self.discard()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if table.schema.names != schema.names:
        raise InvalidState(
            f"The model returned columns {table.schema.names} for one batch and "
            f"{schema.names} for another: the output needs the same columns throughout"
        )
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidState(
            f"The model returned {table.schema} for one batch and {schema} for another, "
            f"and the first cannot be cast to the second: {exc}"
        ) from None


def part_url(parts: str, index: int) -> str:
    return f"{parts.rstrip('/')}/part-{index:05d}.parquet"


# -- the parts folder and its progress file -------------------------------------------------
class PartsFolder:
    """``<output>.parts/``: finished part files and ``progress.json``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.path = _fs(self.url)
        self.state: dict[str, Any] = {}

    def _parts(self) -> dict[int, str]:
        out = {}
        for name in self.fs.ls(self.path, detail=False):
            m = _PART_RE.match(posixpath.basename(name))
            if m:
                out[int(m.group(1))] = name
        return out

    def _read_state(self) -> dict[str, Any] | None:
        try:
            with self.fs.open(f"{self.path}/{PROGRESS_FILE}", "rb") as f:
                state = json.loads(f.read())
        except (FileNotFoundError, OSError, ValueError):
            return None
        return state if isinstance(state, dict) and state.get("format") == _FORMAT else None

    def save(self) -> None:
        data = json.dumps(self.state, indent=1).encode()
        final = f"{self.path}/{PROGRESS_FILE}"
        tmp = f"{self.path}/.{PROGRESS_FILE}.tmp-{uuid.uuid4().hex[:12]}"
        self.fs.pipe_file(tmp, data)
        if _is_local(self.fs):
            os.replace(tmp, final)
        else:
            self.fs.mv(tmp, final)

    def prepare(
        self,
        fingerprint: dict[str, Any],
        chunks: Sequence[Chunk],
        *,
        resume: bool,
        engine: str,
        warn: Callable[[str], None],
    ) -> tuple[set[int], int]:
        """``(finished chunks to reuse, parts discarded)``, and a progress file for this run."""
        done: set[int] = set()
        discarded = 0
        exists = self.fs.exists(self.path)
        if exists and not resume:
            discarded = len(self._parts())
            if discarded:
                warn(
                    f"discarding {discarded} finished part(s) of an earlier run in {self.url} "
                    "(pass --resume to continue that run instead)"
                )
            self.fs.rm(self.path, recursive=True)
            exists = False
        if exists:
            old = self._read_state()
            if old is None:
                raise InvalidState(
                    f"Cannot resume: {self.url} has no readable {PROGRESS_FILE}; run "
                    "without --resume to start over"
                )
            changes = _changes(old.get("fingerprint") or {}, fingerprint)
            if changes:
                raise InvalidState(
                    "Cannot resume: " + "; ".join(changes) + " since the interrupted run "
                    f"(its parts are in {self.url}). Run without --resume to start over."
                )
            done = self._reusable(chunks)
            self.state = old
        elif resume:
            warn(f"nothing to resume (no {self.url}): starting from the beginning")
        if not self.state:
            self.state = {
                "format": _FORMAT,
                "fingerprint": fingerprint,
                "chunks": len(chunks),
                "rows": sum(c.rows for c in chunks),
                "done": [],
                "runs": [],
            }
        self.state["done"] = sorted(done)
        self.state["runs"].append(
            {"started_at": now_ms(), "engine": engine, "resume": resume, "reused": sorted(done)}
        )
        self.fs.makedirs(self.path, exist_ok=True)
        self.save()
        return done, discarded

    def _reusable(self, chunks: Sequence[Chunk]) -> set[int]:
        """Finished parts whose row count matches their chunk; anything else goes."""
        done = set()
        for name in self.fs.ls(self.path, detail=False):
            base = posixpath.basename(name)
            if base.startswith(".") and ".tmp-" in base:
                self.fs.rm(name)  # left by a killed writer
        for index, name in self._parts().items():
            ok = False
            if index < len(chunks):
                try:
                    with self.fs.open(name, "rb") as f:
                        ok = pq.ParquetFile(f).metadata.num_rows == chunks[index].rows
                except (pa.ArrowException, OSError):
                    ok = False
            if ok:
                done.add(index)
            else:
                self.fs.rm(name)
        return done

    def finished(self, chunk: Chunk) -> None:
        self.state["done"] = sorted({*self.state["done"], chunk.index})
        self.save()

    def part_urls(self, n: int) -> list[str]:
        return [part_url(self.url, i) for i in range(n)]

    def remove(self) -> None:
        self.fs.rm(self.path, recursive=True)


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words."""
    out = []
    old_files = {f["url"]: f for f in old.get("files") or []}
    new_files = {f["url"]: f for f in new.get("files") or []}
    file_changes = [f"{u} was removed" for u in old_files if u not in new_files]
    file_changes += [f"{u} is new" for u in new_files if u not in old_files]
    for url, f in new_files.items():
        before = old_files.get(url)
        if before is not None and before != f:
            file_changes.append(f"{url} changed (size {before['size']} -> {f['size']})")
    if file_changes:
        out.append("the input changed: " + ", ".join(file_changes[:5]))
    elif [f["url"] for f in old.get("files") or []] != list(new_files):
        out.append("the input files come in another order")
    om, nm = old.get("model") or {}, new.get("model") or {}
    identity = ("manifest_sha256", "name", "version")  # the URI's spelling may change
    if any(om.get(k) != nm.get(k) for k in identity):
        if om.get("name") and om.get("version") != nm.get("version"):
            what = f"{om['name']} version {om.get('version')} -> {nm.get('version')}"
        elif om.get("uri") != nm.get("uri"):
            what = f"{om.get('uri')} -> {nm.get('uri')}"
        else:
            what = "its package is different"
        out.append(f"the model changed ({what})")
    for key, label in (("batch_size", "--batch-size"), ("id_column", "the id column")):
        if old.get(key) != new.get(key):
            out.append(f"{label} changed ({old.get(key)!r} -> {new.get(key)!r})")
    if old.get("proba") != new.get("proba"):
        out.append("--proba changed")
    return out


def _fingerprint(
    model_uri: str,
    pinned: dict[str, Any],
    model: LoadedModel,
    files: Sequence[InputFile],
    job: ChunkJob,
) -> dict[str, Any]:
    manifest = hashlib.sha256((Path(model.path) / MANIFEST_FILE).read_bytes()).hexdigest()
    return {
        "files": [{"url": f.url, "size": f.size, "version": f.version} for f in files],
        "model": {"uri": model_uri, **pinned, "manifest_sha256": manifest},
        "batch_size": job.batch_size,
        "id_column": job.id_column,
        "proba": job.proba,
    }


# -- the output ----------------------------------------------------------------------------
def _output_url(output: str | os.PathLike) -> str:
    text = os.fspath(output)
    if not text:
        raise InvalidParameter("No output given")
    fs, path = _fs(text)
    if fs.isdir(path):
        raise InvalidParameter(f"Output {text!r} is a folder: give a file name, e.g. preds.parquet")
    return _url(fs, path)


def merge_parts(urls: Sequence[str], output: str) -> tuple[int, tuple[str, ...]]:
    """Concatenate the part files, streaming, into ``output`` (atomically)."""
    with ParquetSink(output) as sink:
        for url in urls:
            fs, path = _fs(url)
            with fs.open(path, "rb") as f:
                pf = pq.ParquetFile(f)
                for i in range(pf.num_row_groups):
                    sink.write(pf.read_row_group(i))
        sink.commit()
    assert sink.schema is not None
    return sink.rows, tuple(sink.schema.names)
