"""The data a suite is inferred from or validated: one Arrow view of any input.

A DataFrame (pandas, or anything with ``to_arrow()`` such as polars), a pyarrow
Table, a Parquet or CSV file, or a folder of Parquet (or of CSV) files. Parquet stays
on disk and is read a few columns at a time (`monitor.columns.TableSource`); CSV
and DataFrames become one Arrow table in memory. Unreadable input raises
`InvalidParameter` saying what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from modelyard.core.errors import InvalidParameter
from modelyard.monitor.columns import TableSource

__all__ = ["Data", "open_data", "type_name"]

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv",)
IGNORED_PREFIXES = (".", "_")  # as pyarrow.dataset: _SUCCESS, .crc files


@dataclass
class Data:
    """``source`` reads columns; ``raw`` is what the profile and drift code can read
    again (an Arrow table or a Parquet path); ``label`` names it in reports."""

    source: TableSource
    raw: Any
    label: str


def open_data(data: Any, name: str = "data") -> Data:
    """``data`` opened for reading; ``name`` prefixes error messages."""
    if isinstance(data, str | os.PathLike):
        path = Path(data).expanduser()
        if not path.exists():
            raise InvalidParameter(f"{name}: no file or folder at {str(path)!r}")
        raw: Any = _read_folder(path, name) if path.is_dir() else _read_file(path, name)
        label = str(data)
    elif isinstance(data, pa.Table):
        raw, label = data, "Arrow table"
    elif type(data).__name__ == "DataFrame" and hasattr(data, "to_arrow"):  # polars
        raw, label = data.to_arrow(), "DataFrame"
    elif type(data).__name__ == "DataFrame":  # pandas
        try:
            raw = pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidParameter(
                f"{name}: a column mixes types Arrow cannot store together ({exc})"
            ) from None
        label = "DataFrame"
    else:
        raise InvalidParameter(
            f"{name}: expected a DataFrame, a pyarrow Table, or the path of a Parquet or "
            f"CSV file or folder, got {type(data).__name__}"
        )
    return Data(TableSource(raw, name), raw, label)


def _read_file(path: Path, name: str) -> Any:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _read_csv([path], name)
    return path  # Parquet, whatever the suffix: TableSource says if it is not


def _read_folder(path: Path, name: str) -> Any:
    files = [
        p
        for p in sorted(path.rglob("*"))
        if p.is_file()
        and not any(part.startswith(IGNORED_PREFIXES) for part in p.relative_to(path).parts)
    ]
    parquet = [p for p in files if p.suffix.lower() in PARQUET_SUFFIXES]
    csv = [p for p in files if p.suffix.lower() in CSV_SUFFIXES]
    others = [p for p in files if p not in parquet and p not in csv]
    if others or (parquet and csv) or not files:
        found = ", ".join(p.name for p in (others or files)[:5]) or "nothing"
        raise InvalidParameter(
            f"{name}: a folder of data holds only Parquet files or only CSV files; "
            f"{path} has {found}"
        )
    return _read_csv(csv, name) if csv else path


def _read_csv(paths: list[Path], name: str) -> pa.Table:
    import pyarrow.dataset as ds

    try:
        return ds.dataset([str(p) for p in paths], format="csv").to_table()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidParameter(f"{name}: not readable CSV ({exc})") from None


def type_name(dtype: pa.DataType) -> str:
    """The suite's name for an Arrow type (see `suite.TYPES`): every integer width is
    ``int``, a dictionary is its values' type; other types keep their Arrow name."""
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    checks = (
        (pa.types.is_boolean, "bool"),
        (pa.types.is_integer, "int"),
        (pa.types.is_floating, "float"),
        (pa.types.is_decimal, "decimal"),
        (_is_text, "string"),
        (pa.types.is_timestamp, "datetime"),
        (pa.types.is_date, "date"),
        (pa.types.is_time, "time"),
        (pa.types.is_duration, "duration"),
        (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "binary"),
        (pa.types.is_null, "null"),
    )
    for test, label in checks:
        if test(dtype):
            return label
    return str(dtype)


def _is_text(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
    )
