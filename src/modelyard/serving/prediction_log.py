"""The prediction log: every answered request, recorded off the request path.

``PredictionLog.record(...)`` puts a record on a bounded queue and returns at once;
a writer thread drains the queue in chunks into a sink. When the queue is full the
record is dropped and counted (``modelyard_prediction_log_dropped_total``): a slow
sink never slows a response. ``close()`` drains what is queued (clean shutdown
loses nothing).

Sinks are objects with ``write(records: list[PredictionRecord])`` (and optionally
``close()``); a plain callable works too. ``ParquetSink`` writes Parquet files
partitioned by model and hour, the layout the monitoring package reads.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd

from modelyard.core.ids import now_ms

__all__ = [
    "ParquetSink",
    "PredictionLog",
    "PredictionRecord",
    "PredictionSink",
    "find_prediction",
]

log = logging.getLogger(__name__)


@dataclass
class PredictionRecord:
    """One answered request. ``inputs``/``outputs`` are kept as the request's own
    objects (arrays, DataFrames) and turned into JSON by the sink, off the event loop."""

    request_id: str
    timestamp_ms: int
    model: str
    version: str
    endpoint: str
    inputs: Any
    outputs: Any
    latency_ms: float
    variant: str | None = None  # the deployment variant that answered (gateway)

    def to_row(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "timestamp_ms": self.timestamp_ms,
            "model": self.model,
            "version": self.version,
            "endpoint": self.endpoint,
            "inputs": to_json(self.inputs),
            "outputs": to_json(self.outputs),
            "latency_ms": self.latency_ms,
            "variant": self.variant,
        }


def to_json(value: Any) -> str:
    """Rows as JSON: a DataFrame as records, arrays as nested lists."""
    if isinstance(value, pd.DataFrame):
        value = value.to_dict(orient="records")
    elif isinstance(value, pd.Series):
        value = value.to_numpy()
    elif isinstance(value, dict):
        value = {k: np.asarray(v) if isinstance(v, pd.Series) else v for k, v in value.items()}
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=_fallback).decode()


def _fallback(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class PredictionSink(Protocol):
    def write(self, records: list[PredictionRecord]) -> None: ...


class ParquetSink:
    """``<root>/model=<name>/date=YYYY-MM-DD/hour=HH/part-<ms>-<id>.parquet``, one file
    per drained chunk and hour; written to a temp name, then renamed."""

    def __init__(self, root: str) -> None:
        from modelyard.core.artifacts import open_artifact_store

        self.store = open_artifact_store(root)

    def write(self, records: list[PredictionRecord]) -> None:
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        groups: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            when = datetime.fromtimestamp(rec.timestamp_ms / 1000, UTC)
            key = f"model={rec.model}/date={when:%Y-%m-%d}/hour={when:%H}"
            groups.setdefault(key, []).append(rec.to_row())
        for key, rows in groups.items():
            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(rows), buf)
            name = f"{key}/part-{now_ms()}-{uuid.uuid4().hex[:8]}.parquet"
            self.store.put_bytes(buf.getvalue(), name)


class PredictionLog:
    """A bounded, non-blocking queue in front of a sink, drained by one thread."""

    def __init__(
        self,
        sink: PredictionSink | Callable[[list[PredictionRecord]], None],
        *,
        max_queue: int = 10_000,
        chunk: int = 5_000,
        flush_seconds: float = 1.0,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self._write = sink.write if hasattr(sink, "write") else sink
        self._sink = sink
        self._queue: queue.Queue[PredictionRecord | None] = queue.Queue(max_queue)
        self._chunk, self._flush_seconds = chunk, flush_seconds
        self._on_drop = on_drop
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._drain, name="prediction-log", daemon=True)
        self._thread.start()

    def record(self, rec: PredictionRecord) -> bool:
        """Queue ``rec``; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(rec)
            return True
        except queue.Full:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
            return False

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        close = getattr(self._sink, "close", None)
        if callable(close):
            close()

    def _drain(self) -> None:
        """Collect a chunk for up to ``flush_seconds`` after its first record, then
        write it: at most one file per model and hour per interval, whatever the
        request rate (a file per handful of records would make lookups crawl)."""
        stop = False
        while not stop:
            try:
                first = self._queue.get(timeout=self._flush_seconds)
            except queue.Empty:
                continue
            chunk: list[PredictionRecord] = []
            if first is None:
                stop = True
            else:
                chunk.append(first)
            deadline = time.monotonic() + self._flush_seconds
            while not stop and len(chunk) < self._chunk:
                wait = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    continue
                chunk.append(item)
            if chunk:
                try:
                    self._write(chunk)
                    self.written += len(chunk)
                except Exception:  # a failing sink must not kill the writer
                    log.exception("prediction log sink failed; %d records lost", len(chunk))


def find_prediction(
    root: str, request_id: str, models: str | list[str] | None = None
) -> dict[str, Any] | None:
    """The logged answer to ``request_id`` under ``root`` (the partitions of
    ``models``, or all), newest file first; None when it was never logged. Reads
    only the ``request_id`` column of each file until it finds a match."""
    import pyarrow.parquet as pq

    from modelyard.core.artifacts import open_artifact_store

    store = open_artifact_store(root)
    if isinstance(models, str):
        models = [models]
    files = []
    for prefix in [f"model={m}" for m in models] if models else [""]:
        try:
            found = list(store.walk(prefix))
        except FileNotFoundError:
            continue
        files += [f"{prefix}/{f.path}".lstrip("/") for f in found if f.path.endswith(".parquet")]
    # newest first: a file's name starts with its write time
    for path in sorted(files, key=lambda p: p.rsplit("/", 1)[-1], reverse=True):
        with store.open_file(path) as f:
            parquet = pq.ParquetFile(f)
            ids = parquet.read(columns=["request_id"]).column(0).to_pylist()
            if request_id not in ids:
                continue
            row = parquet.read().slice(ids.index(request_id), 1).to_pylist()[0]
        outputs = orjson.loads(row["outputs"]) if row.get("outputs") else None
        if isinstance(outputs, dict):  # several outputs: the first
            outputs = next(iter(outputs.values()), None)
        return {
            "model": row["model"],
            "variant": row.get("variant"),
            "version": row.get("version"),
            "prediction": outputs if isinstance(outputs, list) else [outputs],
            "predicted_at": row.get("timestamp_ms"),
        }
    return None
