"""Batch prediction: run a model over Parquet data of any size in bounded memory,
locally or on Ray, and resume an interrupted job where it stopped.

    report = predict_batch("models:/churn@production", "s3://lake/customers/", "preds.parquet")
    report.rows, report.rows_per_second

How a job runs:

1. **Plan** (nothing is predicted yet). The input (a file, a folder's ``*.parquet``
   files, a glob, any fsspec URL) becomes a sorted list of files; their footers
   give schemas and row groups. Consecutive row groups of a file form *chunks* of
   at least ``batch_size`` rows (one row group per chunk when row groups are
   bigger). The model is loaded, and every file's columns are checked against its
   signature: a missing column is an error naming it before any work starts.
2. **Predict** each chunk: its row groups stream as record batches of
   ``batch_size`` rows (a huge row group is re-chunked, and column data is read
   through a small buffer rather than whole), each batch is one ``predict`` call,
   and the id column plus the predictions go to the chunk's part file
   ``<output>.parts/part-00012.parquet``, written under a temporary name and
   renamed when complete. ``<output>.parts/progress.json`` records the input's
   fingerprint (files, sizes, modification times or ETags, batch size, id column,
   model URI, registry version and manifest hash) and the finished chunks.
3. **Merge** the parts, in order and streaming, into a temporary file beside the
   output, rename it to the output (replacing an older one), and remove the parts
   folder. A job that dies before this step never leaves a file at ``output``.

``resume=True`` keeps the part files of an interrupted run (an existing part is
finished: parts only appear complete) and predicts only the missing chunks; a
changed input, model or option is refused with what changed. Without ``resume``,
a parts folder left by an earlier run is discarded with a warning: a run without
``--resume`` means "start over", and refusing instead would make every plain
retry after a crash need a manual clean-up first.

Columns read: the signature's inputs (plus the id column). A model without a
signature, or with one tensor input, gets every column but the id column, in the
first file's order. Output columns: the id column (``"id"`` when the input has one
and ``id_column`` is None; ``""`` keeps none), then ``prediction`` (a 1-D result),
``prediction_0..k`` (a 2-D one), the DataFrame's own column names, or with
``proba=True`` ``proba_<class>`` per class (``proba_0..`` when the classes are
unknown).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import posixpath
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelyard.core.errors import (
    InvalidParameter,
    InvalidState,
    ModelyardError,
    ResourceNotFound,
)
from modelyard.core.ids import now_ms
from modelyard.models.loader import load_model
from modelyard.models.manifest import MANIFEST_FILE
from modelyard.models.package import LoadedModel

__all__ = ["DEFAULT_BATCH_SIZE", "BatchProgress", "BatchReport", "BatchWarning", "predict_batch"]

DEFAULT_BATCH_SIZE = 100_000
# Engines are plugins: a module with ``run(EngineRun)`` and, optionally, ``check()``
# (raises when the engine cannot run here, before any work is done).
ENGINES = {"local": "modelyard.serving.batch", "ray": "modelyard.serving.batch_ray"}
PROGRESS_FILE = "progress.json"
_FORMAT = 1
_READ_BUFFER = 1 << 20  # bytes of a column chunk held while decoding it, per column
_GROUP_ROWS = 1 << 20  # output row groups: at most this many rows ...
_GROUP_BYTES = 64 << 20  # ... or about this many bytes
_PART_RE = re.compile(r"^part-(\d+)\.parquet$")
_MAGIC = re.compile(r"[*?[]")


class BatchWarning(UserWarning):
    """Something the caller should know that does not stop the job (parts discarded)."""


class BatchProgress(Protocol):
    """What a job reports while it runs (the CLI draws a progress bar with it)."""

    def start(self, total_rows: int, done_rows: int) -> None:
        """Called once, after planning: all rows, and those a resumed run reuses."""

    def advance(self, rows: int) -> None:
        """``rows`` more rows were predicted."""

    def warn(self, message: str) -> None:
        """A warning for the user (the job goes on)."""


class _Quiet:
    def start(self, total_rows: int, done_rows: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def warn(self, message: str) -> None:
        warnings.warn(message, BatchWarning, stacklevel=4)


@dataclass(frozen=True)
class BatchReport:
    """What a finished job did.

    - ``rows``: rows in the output; ``predicted_rows``: those predicted by this call
      (the rest came from the parts of an interrupted run, ``reused_chunks``).
    - ``files``, ``chunks``: input files and chunks (row-group ranges) planned.
    - ``seconds``: the whole call, planning and merging included.
    - ``columns``: the output's columns; ``discarded_parts``: parts of an earlier
      run thrown away because ``resume`` was not set.
    """

    output: str
    rows: int
    predicted_rows: int
    files: int
    chunks: int
    reused_chunks: tuple[int, ...]
    seconds: float
    engine: str
    columns: tuple[str, ...]
    discarded_parts: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.predicted_rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": self.rows_per_second}


# -- the plan ---------------------------------------------------------------------------
@dataclass(frozen=True)
class InputFile:
    url: str  # an absolute local path, or a URL with its protocol
    size: int
    version: str  # mtime or ETag: what changes when the file does
    columns: tuple[str, ...]
    row_groups: tuple[int, ...]  # rows in each


@dataclass(frozen=True)
class Chunk:
    """Consecutive row groups of one file: one part file, the unit of resuming."""

    index: int
    file: str
    row_groups: tuple[int, ...]
    rows: int
    first_row: int  # in the file, for messages


@dataclass(frozen=True)
class ChunkJob:
    """Everything a chunk needs besides the model (picklable, for Ray)."""

    parts: str
    batch_size: int
    features: tuple[str, ...]
    id_column: str | None
    proba: bool
    classes: tuple[str, ...] | None

    @property
    def columns(self) -> list[str]:
        extra = [self.id_column] if self.id_column and self.id_column not in self.features else []
        return [*self.features, *extra]


@dataclass
class EngineRun:
    """What an engine gets: the chunks to predict, and whom to tell about them.

    ``finished(chunk)`` must be called after a chunk's part is written;
    ``progress.advance(rows)`` as rows get predicted."""

    job: ChunkJob
    todo: list[Chunk]
    model: LoadedModel
    model_uri: str  # pinned: models:/name/<version> for registry URIs
    allow_pickle: bool
    ray_address: str | None
    progress: BatchProgress
    finished: Callable[[Chunk], None]


def _fs(url: str) -> tuple[Any, str]:
    return fsspec.core.url_to_fs(url)


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def _url(fs: Any, path: str) -> str:
    return path if _is_local(fs) else fs.unstrip_protocol(path)


def _version(info: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "mtime", "LastModified", "last_modified", "updated"):
        if info.get(key) is not None:
            return str(info[key])
    return ""


def _hidden(path: str) -> bool:
    """Names starting with ``.`` or ``_`` are not data (``_SUCCESS``, temp files), as in
    Spark and Hive."""
    return posixpath.basename(path.rstrip("/")).startswith((".", "_"))


def _list_inputs(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """``(url, info)`` of the Parquet files ``spec`` names, sorted."""
    fs, path = _fs(spec)
    if _MAGIC.search(path):
        found = fs.glob(path, detail=True)
        files = {p: i for p, i in found.items() if i.get("type") != "directory" and not _hidden(p)}
        if not files:
            raise ResourceNotFound(f"No file matches {spec!r}")
    elif fs.isdir(path):
        entries = fs.ls(path, detail=True)
        files = {
            e["name"]: e
            for e in entries
            if e.get("type") != "directory"
            and e["name"].endswith(".parquet")
            and not _hidden(e["name"])
        }
        if not files:
            raise ResourceNotFound(
                f"Folder {spec!r} holds no *.parquet file (sub-folders are not searched: "
                "give a glob such as 'folder/**/*.parquet')"
            )
    elif fs.exists(path):
        files = {path: fs.info(path)}
    else:
        raise ResourceNotFound(f"No input at {spec!r}: no such file, folder or glob match")
    return [(_url(fs, p), files[p]) for p in sorted(files)]


def _read_footer(url: str, info: dict[str, Any]) -> InputFile:
    fs, path = _fs(url)
    try:
        with fs.open(path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
            schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidParameter(f"{url!r} is not a readable Parquet file: {exc}") from None
    groups = tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
    return InputFile(url, int(info.get("size") or 0), _version(info), tuple(schema.names), groups)


def resolve_inputs(input: str | os.PathLike | Sequence[str | os.PathLike]) -> list[InputFile]:
    """The input files with their footers (a file, a folder, a glob, or a list of those)."""
    specs = [input] if isinstance(input, str | os.PathLike) else list(input)
    if not specs:
        raise InvalidParameter("No input given")
    seen: dict[str, InputFile] = {}
    for spec in specs:
        for url, info in _list_inputs(os.fspath(spec)):
            if url not in seen:
                seen[url] = _read_footer(url, info)
    return list(seen.values())


def plan_chunks(files: Sequence[InputFile], batch_size: int) -> list[Chunk]:
    """Consecutive row groups of each file, grouped until they hold ``batch_size`` rows."""
    chunks: list[Chunk] = []
    for f in files:
        groups: list[int] = []
        rows = first = offset = 0
        for i, n in enumerate(f.row_groups):
            if n == 0:
                continue
            if not groups:
                first = offset
            groups.append(i)
            rows += n
            offset += n
            if rows >= batch_size:
                chunks.append(Chunk(len(chunks), f.url, tuple(groups), rows, first))
                groups, rows = [], 0
        if groups:
            chunks.append(Chunk(len(chunks), f.url, tuple(groups), rows, first))
    return chunks


# -- model and columns ------------------------------------------------------------------
def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _short(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _choose_id(files: Sequence[InputFile], id_column: str | None) -> str | None:
    """The id column: ``id_column``; None means ``id`` when the first file has one."""
    if id_column is None:
        id_column = "id" if "id" in files[0].columns else ""
    if not id_column:
        return None
    for f in files:
        if id_column not in f.columns:
            raise InvalidParameter(
                f"{f.url!r} has no id column {id_column!r} (its columns: "
                f"{_short(list(f.columns))}); pass the right --id-column, or --no-id"
            )
    return id_column


def _features(model: LoadedModel, files: Sequence[InputFile], id_column: str | None) -> list[str]:
    """The columns the model gets, checked against every file before any work."""
    sig = model.signature
    first = files[0]
    if sig is not None and (sig.kind == "columns" or len(sig.inputs) > 1):
        features = sig.input_names
    else:
        features = [c for c in first.columns if c != id_column]
        if not features:
            raise InvalidParameter(f"{first.url!r} has no column to predict on besides the id")
        spec = sig.inputs[0] if sig is not None else None
        if spec is not None and spec.shape is not None and len(spec.shape) == 2:
            width = spec.shape[1]
            if width != -1 and width != len(features):
                raise InvalidParameter(
                    f"The model takes one tensor {spec.name!r} of {width} columns, but "
                    f"{first.url!r} has {len(features)} besides the id column "
                    f"({_short(features)}); nothing was predicted"
                )
    for f in files:
        present = set(f.columns)
        missing = [c for c in features if c not in present]
        if missing:
            what = "the model's signature" if sig is not None else f"the first file {first.url!r}"
            raise InvalidParameter(
                f"{f.url!r} is missing column(s) {_quoted(missing)} required by {what} "
                f"(expected columns: {_short(features)}); nothing was predicted"
            )
    return features


def _classes(model: LoadedModel) -> tuple[str, ...] | None:
    classes = getattr(model.raw, "classes_", None)
    if classes is None:
        return None
    try:
        return tuple(str(c) for c in np.asarray(classes).ravel())
    except TypeError:
        return None


def _check_proba(model: LoadedModel, uri: str) -> None:
    try:
        model.predict_proba  # noqa: B018 - the property raises when there is none
    except AttributeError:
        raise InvalidParameter(
            f"The model at {uri!r} ({model.flavor}) has no predict_proba: drop --proba "
            "to write its predictions"
        ) from None


def _pin(model_uri: str) -> tuple[str, dict[str, Any]]:
    """A ``models:/`` URI pinned to the version it names now, and what to fingerprint."""
    if not model_uri.startswith("models:"):
        return model_uri, {}
    # The registry is only needed for registry URIs (the loader plugs it in the same way).
    from modelyard.sdk.registry import model_registry

    mv = model_registry().resolve(model_uri)
    return mv.uri, {"name": mv.name, "version": mv.version}


# -- one batch, one chunk ----------------------------------------------------------------
def _output_arrays(pred: Any, job: ChunkJob) -> dict[str, pa.Array]:
    if job.proba:
        arr = np.asarray(pred)
        if arr.ndim == 1:
            return {"proba": pa.array(arr)}
        names = job.classes if job.classes and len(job.classes) == arr.shape[1] else None
        return {
            f"proba_{names[j] if names else j}": pa.array(np.ascontiguousarray(arr[:, j]))
            for j in range(arr.shape[1])
        }
    if isinstance(pred, pd.DataFrame):
        return {str(c): pa.Array.from_pandas(pred[c]) for c in pred.columns}
    if isinstance(pred, pd.Series):
        return {"prediction": pa.Array.from_pandas(pred)}
    if isinstance(pred, dict):
        out: dict[str, pa.Array] = {}
        for key, value in pred.items():
            out.update(_named(str(key), np.asarray(value)))
        return out
    return _named("prediction", np.asarray(pred))


def _named(name: str, arr: np.ndarray) -> dict[str, pa.Array]:
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim <= 1:
        return {name: pa.array(arr)}
    if arr.ndim == 2:
        return {
            f"{name}_{j}": pa.array(np.ascontiguousarray(arr[:, j])) for j in range(arr.shape[1])
        }
    raise InvalidState(
        f"The model returned an array of shape {arr.shape}; batch prediction writes "
        "one column per output and needs 1-D or 2-D results"
    )


def predict_table(model: LoadedModel, batch: pa.RecordBatch, job: ChunkJob, where: str) -> pa.Table:
    """The output rows of one record batch: the id column, then the predictions."""
    frame = batch.select(list(job.features)).to_pandas()
    call = model.predict_proba if job.proba else model.predict
    try:
        pred = call(frame)
    except ModelyardError as exc:
        raise type(exc)(f"{exc.message} ({where})") from None
    except Exception as exc:
        raise ModelyardError(f"The model raised {type(exc).__name__} on {where}: {exc}") from exc
    arrays = _output_arrays(pred, job)
    for name, arr in arrays.items():
        if len(arr) != batch.num_rows:
            raise InvalidState(
                f"The model returned {len(arr)} values for {name!r} on {batch.num_rows} rows "
                f"({where})"
            )
    if job.id_column:
        if job.id_column in arrays:
            raise InvalidParameter(
                f"The id column {job.id_column!r} has the name of an output column: "
                "pick another --id-column, or --no-id"
            )
        arrays = {job.id_column: batch.column(job.id_column), **arrays}
    return pa.Table.from_arrays(list(arrays.values()), names=list(arrays))


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


def _read_batches(source: Any, job: ChunkJob, chunk: Chunk) -> Iterator[pa.RecordBatch]:
    """The chunk's rows, ``batch_size`` at a time; read errors name the file.

    Column data is read through a small buffer (``buffer_size``, no pre-buffering),
    so a row group of millions of rows costs a batch's memory, not its own."""
    try:
        pf = pq.ParquetFile(source, buffer_size=_READ_BUFFER, pre_buffer=False)
        yield from pf.iter_batches(
            batch_size=job.batch_size, row_groups=list(chunk.row_groups), columns=job.columns
        )
    except (pa.ArrowException, OSError) as exc:
        raise InvalidParameter(f"Cannot read {chunk.file!r}: {exc}") from None


def predict_chunk(
    model: LoadedModel,
    job: ChunkJob,
    chunk: Chunk,
    advance: Callable[[int], None] | None = None,
) -> int:
    """Predict one chunk, streaming, into its part file; returns its rows."""
    fs, path = _fs(chunk.file)
    offset = chunk.first_row
    with contextlib.ExitStack() as stack:
        source = path if _is_local(fs) else stack.enter_context(fs.open(path, "rb"))
        sink = stack.enter_context(ParquetSink(part_url(job.parts, chunk.index), part=True))
        for batch in _read_batches(source, job, chunk):
            where = f"rows {offset:,}-{offset + batch.num_rows - 1:,} of {chunk.file!r}"
            sink.write(predict_table(model, batch, job, where))
            offset += batch.num_rows
            if advance is not None:
                advance(batch.num_rows)
        if sink.rows != chunk.rows:
            raise InvalidState(
                f"{chunk.file!r} gave {sink.rows} rows for row groups {list(chunk.row_groups)}, "
                f"its footer says {chunk.rows}: was it changed while the job ran?"
            )
        sink.commit()
    return chunk.rows


def run(job_run: EngineRun) -> None:
    """The local engine: the chunks one after the other in this process."""
    for chunk in job_run.todo:
        predict_chunk(job_run.model, job_run.job, chunk, job_run.progress.advance)
        job_run.finished(chunk)


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


# -- the call -------------------------------------------------------------------------------
def predict_batch(
    model_uri: str | os.PathLike,
    input: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    id_column: str | None = None,
    proba: bool = False,
    resume: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    allow_pickle: bool = False,
    progress: BatchProgress | None = None,
) -> BatchReport:
    """Predict every row of ``input`` with the model at ``model_uri`` into the Parquet
    file ``output``, in bounded memory.

    Example::

        report = my.predict_batch("models:/churn@production", "data/", "preds.parquet")
        print(f"{report.rows:,} rows at {report.rows_per_second:,.0f} rows/s")

    - ``model_uri``: anything ``load_model`` takes (a path, ``runs:/``, ``models:/``,
      ``s3://``); a registry alias is pinned to its version when the job starts.
    - ``input``: a Parquet file, a folder (its ``*.parquet`` files, sorted), a glob,
      any fsspec URL (``s3://bucket/prefix/``), or a list of those.
    - ``output``: the Parquet file to write (local path or fsspec URL); replaced
      atomically when the job ends, never half-written.
    - ``batch_size``: rows per ``predict`` call (and the least rows per chunk).
    - ``id_column``: a column copied beside the predictions; None keeps ``id`` when
      the input has it, ``""`` keeps none.
    - ``proba``: write class probabilities instead of predictions.
    - ``resume``: continue the interrupted job that wrote to ``output``.
    - ``engine``: ``"local"`` (this process) or ``"ray"`` (partitions as Ray tasks,
      on ``ray_address``: ``"auto"``, ``"ray://host:10001"``, or None for the running
      or a new local Ray).
    - ``allow_pickle``: load a model stored with pickle (it can run arbitrary code).
    - ``progress``: told about planning and progress (see `BatchProgress`).
    """
    started = time.perf_counter()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidParameter(f"batch_size must be a positive number of rows, got {batch_size!r}")
    if engine not in ENGINES:
        raise InvalidParameter(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if ray_address and engine != "ray":
        raise InvalidParameter("ray_address only applies to engine='ray' (--engine ray)")
    engine_module = importlib.import_module(ENGINES[engine])
    if hasattr(engine_module, "check"):
        engine_module.check()
    progress = progress or _Quiet()
    model_uri = os.fspath(model_uri)

    files = resolve_inputs(input)
    out = _output_url(output)
    if out in {f.url for f in files}:
        raise InvalidParameter(f"The output {out!r} is also an input: write elsewhere")
    total = sum(sum(f.row_groups) for f in files)
    if total == 0:
        raise InvalidParameter(f"The input ({len(files)} file(s)) holds no rows to predict")

    pinned_uri, pinned = _pin(model_uri)
    model = load_model(pinned_uri, allow_pickle=allow_pickle)
    if proba:
        _check_proba(model, model_uri)
    id_col = _choose_id(files, id_column)
    job = ChunkJob(
        parts=f"{out}.parts",
        batch_size=batch_size,
        features=tuple(_features(model, files, id_col)),
        id_column=id_col,
        proba=proba,
        classes=_classes(model) if proba else None,
    )
    chunks = plan_chunks(files, batch_size)
    parts = PartsFolder(job.parts)
    fingerprint = _fingerprint(model_uri, pinned, model, files, job)
    done, discarded = parts.prepare(
        fingerprint, chunks, resume=resume, engine=engine, warn=progress.warn
    )
    todo = [c for c in chunks if c.index not in done]
    done_rows = sum(chunks[i].rows for i in done)
    progress.start(total, done_rows)

    try:
        engine_module.run(
            EngineRun(
                job=job,
                todo=todo,
                model=model,
                model_uri=pinned_uri,
                allow_pickle=allow_pickle,
                ray_address=ray_address,
                progress=progress,
                finished=parts.finished,
            )
        )
    except ModelyardError as exc:
        kept = len(parts.state.get("done") or [])
        if not kept:
            parts.remove()  # nothing worth resuming
            raise
        hint = f" ({kept} finished chunk(s) kept in {parts.url}: --resume continues)"
        raise type(exc)(exc.message + hint) from None
    rows, columns = merge_parts(parts.part_urls(len(chunks)), out)
    parts.remove()
    return BatchReport(
        output=out,
        rows=rows,
        predicted_rows=rows - done_rows,
        files=len(files),
        chunks=len(chunks),
        reused_chunks=tuple(sorted(done)),
        seconds=time.perf_counter() - started,
        engine=engine,
        columns=columns,
        discarded_parts=discarded,
    )
