"""Tables inside versioned data: which files are tabular, reading them, describing
and comparing them (schema, row counts, summary statistics).

A version's tabular content is every Parquet (or else every CSV) file of its tree,
read as one Arrow table; cache objects have no file extension, so the format comes
from the workspace names the tree records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from modelyard.core.errors import InvalidParameter

__all__ = [
    "ColumnChange",
    "TableDiff",
    "columns_of",
    "diff_tables",
    "read_table",
    "summarize",
    "table_format",
]

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def table_format(name: str) -> str | None:
    return _FORMATS.get(Path(name).suffix.lower())


def read_table(files: list[Path], fmt: str) -> pa.Table:
    """One table from files of one format (they must share a schema)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        tables = [pq.read_table(f) for f in files]
    elif fmt == "csv":
        from pyarrow import csv

        tables = [csv.read_csv(f) for f in files]
    else:
        raise InvalidParameter(f"Not a tabular format: {fmt!r} (parquet or csv)")
    if not tables:
        raise InvalidParameter("No tabular files to read")
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidParameter(f"The {fmt} files do not share one schema: {exc}") from None


def columns_of(table: pa.Table) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def summarize(table: pa.Table) -> dict[str, dict[str, Any]]:
    """Per column: type, nulls, distinct count and, for numbers, min / mean / max."""
    out: dict[str, dict[str, Any]] = {}
    for f in table.schema:
        col = table.column(f.name)
        row: dict[str, Any] = {"type": str(f.type), "nulls": col.null_count}
        numeric = pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
        if numeric and len(col) > col.null_count:
            row["min"] = pc.min(col).as_py()
            row["mean"] = pc.mean(col).as_py()
            row["max"] = pc.max(col).as_py()
        if not pa.types.is_nested(f.type):
            row["distinct"] = pc.count_distinct(col).as_py()
        out[f.name] = row
    return out


@dataclass
class ColumnChange:
    column: str
    change: str  # added, removed, retyped, changed
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass
class TableDiff:
    rows_before: int
    rows_after: int
    columns: list[ColumnChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_before": self.rows_before,
            "rows_after": self.rows_after,
            "columns": [c.__dict__ for c in self.columns],
        }


def diff_tables(old: pa.Table, new: pa.Table) -> TableDiff:
    """Schema changes and, for columns in both, which summary statistics moved."""
    before, after = summarize(old), summarize(new)
    diff = TableDiff(old.num_rows, new.num_rows)
    for name in before.keys() | after.keys():
        b, a = before.get(name), after.get(name)
        if b is None:
            diff.columns.append(ColumnChange(name, "added", None, a))
        elif a is None:
            diff.columns.append(ColumnChange(name, "removed", b, None))
        elif a["type"] != b["type"]:
            diff.columns.append(ColumnChange(name, "retyped", b, a))
        elif a != b:
            diff.columns.append(ColumnChange(name, "changed", b, a))
    order = {"removed": 0, "added": 1, "retyped": 2, "changed": 3}
    diff.columns.sort(key=lambda c: (order[c.change], c.column))
    return diff
