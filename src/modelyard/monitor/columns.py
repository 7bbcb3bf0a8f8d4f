"""Reading columns for monitoring: one code path over Arrow.

Monitoring takes pandas DataFrames, pyarrow Tables or Parquet files; all of them
become Arrow columns here, so the profile and drift code never branches on the
input type. A Parquet file is read a few columns at a time (`column_batches`), so
a window wider than memory still streams.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelyard.core.errors import InvalidParameter

__all__ = [
    "NUMERICAL",
    "CATEGORICAL",
    "TableSource",
    "category_counts",
    "infer_kind",
    "numeric_values",
]

NUMERICAL, CATEGORICAL = "numerical", "categorical"
# integer columns with at most this many distinct values are categories (codes, flags)
MAX_INTEGER_CATEGORIES = 5


class TableSource:
    """Columns of a DataFrame, an Arrow table or a Parquet file (or folder of files)."""

    def __init__(self, data: Any, name: str) -> None:
        self.name = name
        self._table: pa.Table | None = None
        self._dataset = None
        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            if not path.exists():
                raise InvalidParameter(f"{name}: no file or folder at {str(path)!r}")
            if path.suffix.lower() == ".csv":
                data = _read_csv(path, name)
            else:
                self._open_parquet(path, name)
                return
        self._from_memory(data, name)

    def _open_parquet(self, path: Path, name: str) -> None:
        import pyarrow.dataset as ds

        try:
            self._dataset = ds.dataset(str(path), format="parquet")
            self.schema = self._dataset.schema
            self.rows = self._dataset.count_rows()
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidParameter(f"{name}: {path} is not readable Parquet ({exc})") from None

    def _from_memory(self, data: Any, name: str) -> None:
        if isinstance(data, pa.Table):
            self._table = data
        elif _is_dataframe(data):
            try:
                self._table = pa.Table.from_pandas(data, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise InvalidParameter(
                    f"{name}: a column mixes types Arrow cannot store together ({exc})"
                ) from None
        else:
            raise InvalidParameter(
                f"{name}: expected a pandas DataFrame, a pyarrow Table or a Parquet path, "
                f"got {type(data).__name__}"
            )
        self.schema = self._table.schema
        self.rows = self._table.num_rows

    @property
    def names(self) -> list[str]:
        return list(self.schema.names)

    def read(self, columns: Sequence[str]) -> dict[str, pa.ChunkedArray]:
        """The named columns (which must exist)."""
        if self._table is not None:
            return {c: self._table.column(c) for c in columns}
        table = self._dataset.to_table(columns=list(columns))
        return {c: table.column(c) for c in columns}


def _read_csv(path: Path, name: str) -> pa.Table:
    from pyarrow import csv

    try:
        return csv.read_csv(str(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidParameter(f"{name}: {path} is not readable CSV ({exc})") from None


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns")


def infer_kind(column: pa.ChunkedArray | pa.DataType, distinct: int | None = None) -> str | None:
    """numerical, categorical, or None for what neither kind covers (lists, structs,
    binary). Integers with few distinct values (``distinct`` if known) are categories."""
    dtype = column if isinstance(column, pa.DataType) else column.type
    if pa.types.is_dictionary(dtype):
        return CATEGORICAL
    if pa.types.is_boolean(dtype) or pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return CATEGORICAL
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return NUMERICAL
    if pa.types.is_integer(dtype):
        if distinct is None and not isinstance(column, pa.DataType):
            distinct = pc.count_distinct(column, mode="only_valid").as_py()
        return (
            CATEGORICAL
            if distinct is not None and distinct <= MAX_INTEGER_CATEGORIES
            else NUMERICAL
        )
    if pa.types.is_temporal(dtype):
        return NUMERICAL
    return None


def numeric_values(column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """The non-missing values as a numpy array (float32 stays float32) and the
    missing count (nulls and NaNs). Infinite values count as missing too: they have
    no place on a distribution's axis. Any other type (strings, even numeric-looking
    ones) raises `InvalidParameter`."""
    dtype = column.type
    if pa.types.is_temporal(dtype):
        column = column.cast(pa.int64())
    elif pa.types.is_decimal(dtype) or pa.types.is_integer(dtype) or pa.types.is_null(dtype):
        column = column.cast(pa.float64())
    elif pa.types.is_float16(dtype):
        column = column.cast(pa.float32())
    elif not pa.types.is_floating(dtype):
        raise InvalidParameter(f"expected numbers, got {dtype}")
    values = column.to_numpy() if column.null_count == 0 else _with_nan(column)
    if values.dtype.kind == "i":
        return values, 0
    finite = np.isfinite(values)
    if finite.all():
        return values, 0
    return values[finite], int(values.size - finite.sum())


def _with_nan(column: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy()


def category_counts(column: pa.ChunkedArray) -> tuple[dict[str, int], int]:
    """Counts per category (keys as strings, so profiles are plain JSON) and the
    missing count."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    counts = pc.value_counts(column)
    values = counts.field("values").to_pylist()
    freq = counts.field("counts").to_pylist()
    out: dict[str, int] = {}
    missing = 0
    for value, n in zip(values, freq, strict=True):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            missing += n
        else:
            # 1.0 and 1 are one category: pandas turns integer codes into floats
            # as soon as a window holds a missing value
            integral = isinstance(value, float) and value.is_integer()
            key = str(int(value)) if integral else str(value)
            out[key] = out.get(key, 0) + n
    return out, missing


def batches(names: Sequence[str], size: int) -> Iterator[list[str]]:
    """``names`` in consecutive groups of ``size``."""
    for i in range(0, len(names), size):
        yield list(names[i : i + size])
