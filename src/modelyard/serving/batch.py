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
import importlib
import os
import posixpath
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

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
from modelyard.models.loader import load_model
from modelyard.models.package import LoadedModel
from modelyard.serving.batch_parts import (
    BatchWarning,
    ParquetSink,
    PartsFolder,
    _fingerprint,
    _fs,
    _is_local,
    _output_url,
    _url,
    merge_parts,
    part_url,
)

__all__ = ["DEFAULT_BATCH_SIZE", "BatchProgress", "BatchReport", "BatchWarning", "predict_batch"]

DEFAULT_BATCH_SIZE = 100_000
# Engines are plugins: a module with ``run(EngineRun)`` and, optionally, ``check()``
# (raises when the engine cannot run here, before any work is done).
ENGINES = {"local": "modelyard.serving.batch", "ray": "modelyard.serving.batch_ray"}
_READ_BUFFER = 1 << 20  # bytes of a column chunk held while decoding it, per column
_MAGIC = re.compile(r"[*?[]")


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
