"""The prediction store, read side: a time window of one model's answered requests
as a table of features and predictions.

The serving hook (`modelyard.serving.prediction_log`) writes Parquet files
partitioned by model, date and hour under the artifact store: a columnar layout that
any engine reads (pyarrow, DuckDB, Spark), costs nothing to append to, and prunes
by model and time from the path alone. A table in the metadata database would
make every answer a write transaction on the store the registry depends on. Each
logged request keeps its inputs and outputs as JSON (a request may hold several
rows); `read_predictions` expands them into one row per predicted row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pandas as pd

from modelyard.core.errors import InvalidParameter

__all__ = ["PREDICTION", "expand_record", "read_predictions"]

PREDICTION = "prediction"
META = ["request_id", "timestamp_ms", "version", "variant", "latency_ms"]


def _hours(start_ms: int | None, end_ms: int | None) -> set[str] | None:
    """The ``date=.../hour=...`` partitions a window touches (None: all of them)."""
    if start_ms is None or end_ms is None or end_ms - start_ms > 31 * 24 * 3_600_000:
        return None
    hour = datetime.fromtimestamp(start_ms / 1000, UTC).replace(minute=0, second=0, microsecond=0)
    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    out = set()
    while hour <= end:
        out.add(f"date={hour:%Y-%m-%d}/hour={hour:%H}")
        hour += timedelta(hours=1)
    return out


def read_predictions(
    root: str,
    model: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    version: str | None = None,
    feature_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows predicted by ``model`` with ``start_ms <= timestamp < end_ms``.

    Columns: request_id, timestamp_ms, version, variant, latency_ms, the input
    features (named from the request, else ``feature_names``, else ``"0"``, ``"1"``
    ...) and ``prediction`` (``prediction_<output>`` for several outputs). An empty
    window is an empty frame with the meta columns."""
    import pyarrow.parquet as pq

    from modelyard.core.artifacts import open_artifact_store

    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise InvalidParameter(f"The window ends ({end_ms}) before it starts ({start_ms})")
    store = open_artifact_store(root)
    prefix = f"model={model}"
    hours = _hours(start_ms, end_ms)
    try:
        files = [f.path for f in store.walk(prefix) if f.path.endswith(".parquet")]
    except FileNotFoundError:
        files = []
    if hours is not None:
        files = [f for f in files if f.rsplit("/", 1)[0] in hours]
    rows: list[dict[str, Any]] = []
    for path in sorted(files):
        with store.open_file(f"{prefix}/{path}") as f:
            table = pq.read_table(f)
        for rec in table.to_pylist():
            ts = rec["timestamp_ms"]
            if (start_ms is not None and ts < start_ms) or (end_ms is not None and ts >= end_ms):
                continue
            if version is not None and rec["version"] != str(version):
                continue
            rows.extend(expand_record(rec, feature_names))
    if not rows:
        return pd.DataFrame(columns=[*META, PREDICTION])
    return pd.DataFrame(rows).sort_values(["timestamp_ms", "request_id"], kind="stable")


def expand_record(rec: dict[str, Any], feature_names: Sequence[str] | None) -> list[dict[str, Any]]:
    """One logged request → one dict per predicted row."""
    meta = {k: rec.get(k) for k in META}
    inputs = orjson.loads(rec["inputs"]) if rec.get("inputs") else []
    outputs = orjson.loads(rec["outputs"]) if rec.get("outputs") else []
    features = _input_rows(inputs, feature_names)
    predictions = _output_rows(outputs, len(features))
    out = []
    for i, row in enumerate(features):
        item = dict(meta)
        item.update(row)
        item.update(predictions[i] if i < len(predictions) else {})
        out.append(item)
    return out


def _input_rows(inputs: Any, names: Sequence[str] | None) -> list[dict[str, Any]]:
    if isinstance(inputs, dict):  # named tensors or columns: {name: [values...]}
        columns = {k: v if isinstance(v, list) else [v] for k, v in inputs.items()}
        size = max((len(v) for v in columns.values()), default=0)
        return [
            {k: (v[i] if i < len(v) else None) for k, v in columns.items()} for i in range(size)
        ]
    if not isinstance(inputs, list):
        return [{"0": inputs}]
    if inputs and all(isinstance(r, dict) for r in inputs):
        return inputs
    rows = []
    for r in inputs:
        values = r if isinstance(r, list) else [r]
        keys = names if names is not None and len(names) == len(values) else None
        rows.append({(keys[j] if keys else str(j)): v for j, v in enumerate(values)})
    return rows


def _output_rows(outputs: Any, n: int) -> list[dict[str, Any]]:
    if isinstance(outputs, dict):
        if len(outputs) == 1:
            outputs = next(iter(outputs.values()))
        else:
            per = {k: v if isinstance(v, list) else [v] * n for k, v in outputs.items()}
            return [{f"{PREDICTION}_{k}": v[i] for k, v in per.items()} for i in range(n)]
    if not isinstance(outputs, list):
        outputs = [outputs] * n
    return [{PREDICTION: v} for v in outputs]
