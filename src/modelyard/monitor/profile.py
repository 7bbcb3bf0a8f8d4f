"""Profiles: what monitoring keeps of a dataset instead of its rows.

A reference profile holds, per column, its kind, counts, missing values, summary
statistics, quantiles, and either a histogram on fine quantile bins of its own
(numerical: 100 bins, the cut points stored) or category frequencies. A window
profile is counted **on the reference's bins** (`DatasetProfile.profile`), so
windows add up (`merge`) and drift between a reference and a window needs no raw
data. Profiles are plain JSON (`to_dict`, `save`, `load`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import orjson

from modelyard.core.errors import InvalidParameter
from modelyard.core.ids import now_ms
from modelyard.monitor.columns import (
    CATEGORICAL,
    NUMERICAL,
    TableSource,
    batches,
    category_counts,
    infer_kind,
    numeric_values,
)

__all__ = ["ColumnProfile", "DatasetProfile", "profile"]

FINE_BINS = 100
MAX_CATEGORIES = 1000
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
COLUMN_BATCH = 32  # columns read from Parquet at a time


@dataclass
class ColumnProfile:
    """One column. Numerical: ``edges`` are interior cut points (right-closed bins,
    open-ended outer bins) and ``counts`` has one more entry. Categorical:
    ``categories`` holds the most frequent ``MAX_CATEGORIES`` and ``other`` the rest."""

    name: str
    kind: str
    count: int = 0  # values present
    missing: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: list[float] | None = None  # at QUANTILES
    edges: list[float] | None = None
    counts: list[int] | None = None
    sums: list[float] | None = None  # sum of the values in each bin (exact Wasserstein)
    categories: dict[str, int] | None = None
    other: int = 0
    message: str | None = None  # why the column could not be profiled

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """The profile of both windows together (same reference bins)."""
        if other.kind != self.kind:
            raise InvalidParameter(f"{self.name}: cannot merge {self.kind} with {other.kind}")
        out = ColumnProfile(self.name, self.kind, self.count + other.count)
        out.missing = self.missing + other.missing
        if self.kind == CATEGORICAL:
            cats = dict(self.categories or {})
            for k, v in (other.categories or {}).items():
                cats[k] = cats.get(k, 0) + v
            out.categories, extra = _top(cats)
            out.other = self.other + other.other + extra
            return out
        parts = [p for p in (self, other) if p.count]
        if not parts:
            out.edges, out.counts = self.edges, self.counts
            return out
        if self.edges != other.edges:
            raise InvalidParameter(f"{self.name}: windows were counted on different bins")
        out.min = min(p.min for p in parts)
        out.max = max(p.max for p in parts)
        out.mean = sum(p.mean * p.count for p in parts) / out.count
        out.std = float(
            np.sqrt(sum(p.count * (p.std**2 + (p.mean - out.mean) ** 2) for p in parts) / out.count)
        )
        out.edges = self.edges
        out.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        if self.sums is not None and other.sums is not None:
            out.sums = [a + b for a, b in zip(self.sums, other.sums, strict=True)]
        out.quantiles = quantiles_from_counts(out.edges, out.counts, out.min, out.max)
        return out


def _top(cats: dict[str, int]) -> tuple[dict[str, int], int]:
    """The ``MAX_CATEGORIES`` most frequent categories and the count of the rest."""
    if len(cats) <= MAX_CATEGORIES:
        return dict(sorted(cats.items(), key=lambda kv: -kv[1])), 0
    ranked = sorted(cats.items(), key=lambda kv: -kv[1])
    return dict(ranked[:MAX_CATEGORIES]), sum(v for _, v in ranked[MAX_CATEGORIES:])


def sorted_quantiles(values: np.ndarray, levels: Sequence[float]) -> list[float]:
    """Quantiles of a sorted array (linear interpolation, numpy's default method)."""
    pos = np.asarray(levels) * (values.size - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, values.size - 1)
    frac = pos - lo
    lo_v, hi_v = values[lo].astype(float), values[hi].astype(float)
    return (lo_v + (hi_v - lo_v) * frac).tolist()


def quantiles_from_counts(
    edges: Sequence[float], counts: Sequence[int], low: float, high: float
) -> list[float]:
    """Quantiles read off a histogram (linear inside each bin): for merged windows."""
    points = np.concatenate([[low], np.clip(edges, low, high), [high]])
    cdf = np.concatenate([[0.0], np.cumsum(counts, dtype=float)])
    cdf /= cdf[-1]
    return np.interp(QUANTILES, cdf, points).tolist()


def numeric_profile(
    name: str, sorted_values: np.ndarray, missing: int, edges: Sequence[float] | None = None
) -> ColumnProfile:
    """A numerical column's profile from its sorted values: on ``edges`` (a
    reference's) or on fine quantile bins of its own."""
    prof = ColumnProfile(name, NUMERICAL, int(sorted_values.size), missing)
    if edges is None:
        edges = np.unique(
            sorted_quantiles(sorted_values, np.linspace(0, 1, FINE_BINS + 1)[1:-1])
            if sorted_values.size
            else []
        ).tolist()
    prof.edges = list(edges)
    below = np.searchsorted(sorted_values, np.asarray(edges, dtype=float), side="right")
    bounds = np.concatenate([[0], below, [sorted_values.size]])
    prof.counts = np.diff(bounds).tolist()
    running = np.concatenate([[0.0], np.cumsum(sorted_values, dtype=np.float64)])
    prof.sums = np.diff(running[bounds]).tolist()
    if sorted_values.size:
        prof.min, prof.max = float(sorted_values[0]), float(sorted_values[-1])
        prof.mean = float(np.mean(sorted_values, dtype=np.float64))
        prof.std = float(np.std(sorted_values, dtype=np.float64))
        prof.quantiles = sorted_quantiles(sorted_values, QUANTILES)
    return prof


def categorical_profile(name: str, counts: dict[str, int], missing: int) -> ColumnProfile:
    prof = ColumnProfile(name, CATEGORICAL, sum(counts.values()), missing)
    prof.categories, prof.other = _top(counts)
    return prof


@dataclass
class DatasetProfile:
    """Column profiles of one dataset or window. ``reference`` is False for a window
    counted on another profile's bins."""

    columns: dict[str, ColumnProfile]
    rows: int
    reference: bool = True
    created_at: int = field(default_factory=now_ms)

    def profile(self, data: Any, *, workers: int | None = None) -> DatasetProfile:
        """``data`` (a window) counted on this profile's bins and categories, for the
        columns both have; a column missing from ``data`` is left out."""
        source = TableSource(data, "current")
        names = [c for c in self.columns if c in source.schema.names]
        kinds = {c: self.columns[c].kind for c in names}
        edges = {c: self.columns[c].edges for c in names if kinds[c] == NUMERICAL}
        cols = _profile_columns(source, names, kinds, edges, workers)
        return DatasetProfile(cols, source.rows, reference=False)

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """Two windows as one (both counted on the same reference's bins)."""
        cols = dict(self.columns)
        for name, col in other.columns.items():
            cols[name] = cols[name].merge(col) if name in cols else col
        return DatasetProfile(cols, self.rows + other.rows, reference=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "reference": self.reference,
            "created_at": self.created_at,
            "columns": {k: asdict(v) for k, v in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetProfile:
        try:
            cols = {k: ColumnProfile(**v) for k, v in data["columns"].items()}
            return cls(
                cols,
                int(data["rows"]),
                bool(data.get("reference", True)),
                int(data.get("created_at", 0)),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidParameter(f"Not a modelyard profile: {exc}") from None

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "wb") as f:
            f.write(orjson.dumps(self.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))

    @classmethod
    def load(cls, path: str | os.PathLike) -> DatasetProfile:
        with open(path, "rb") as f:
            try:
                return cls.from_dict(orjson.loads(f.read()))
            except orjson.JSONDecodeError as exc:
                raise InvalidParameter(f"{path} is not a profile (bad JSON: {exc})") from None


def profile(
    data: Any,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    workers: int | None = None,
) -> DatasetProfile:
    """The reference profile of ``data`` (DataFrame, Arrow table or Parquet path).

    Column kinds are inferred (see `columns.infer_kind`); names in ``categorical``
    are categories whatever their type."""
    source = TableSource(data, "reference")
    names = list(columns) if columns is not None else source.names
    missing = [c for c in names if c not in source.schema.names]
    if missing:
        raise InvalidParameter(f"reference has no column(s): {', '.join(missing)}")
    kinds = column_kinds(source, names, categorical)
    cols = _profile_columns(source, names, kinds, {}, workers)
    return DatasetProfile(cols, source.rows)


def column_kinds(
    source: TableSource, names: Sequence[str], categorical: Sequence[str] = ()
) -> dict[str, str | None]:
    """Each column's kind from its type (integers: from their distinct count)."""
    import pyarrow as pa

    kinds: dict[str, str | None] = {}
    for name in names:
        dtype = source.schema.field(name).type
        if name in categorical:
            kinds[name] = CATEGORICAL
        elif pa.types.is_integer(dtype):
            kinds[name] = infer_kind(source.read([name])[name])
        else:
            kinds[name] = infer_kind(dtype)
    return kinds


def _profile_columns(
    source: TableSource,
    names: Sequence[str],
    kinds: dict[str, str | None],
    edges: dict[str, list[float] | None],
    workers: int | None,
) -> dict[str, ColumnProfile]:
    def one(name: str, column) -> ColumnProfile:
        kind = kinds[name]
        if kind == CATEGORICAL:
            counts, missing = category_counts(column)
            return categorical_profile(name, counts, missing)
        if kind is None:
            if column.null_count == len(column):  # all-None object columns arrive as null
                return ColumnProfile(
                    name, "unknown", message="the reference has no values (all missing)"
                )
            return ColumnProfile(
                name, "unsupported", message=f"type {column.type} is not monitored"
            )
        try:
            values, missing = numeric_values(column)
        except Exception as exc:  # noqa: BLE001 - a column that is not numbers after all
            return ColumnProfile(name, NUMERICAL, message=f"not numeric: {exc}")
        return numeric_profile(name, np.sort(values), missing, edges.get(name))

    out: dict[str, ColumnProfile] = {}
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for group in batches(list(names), COLUMN_BATCH):
            data = source.read(group)
            pairs = [(n, data[n]) for n in group]
            for prof in pool.map(lambda args: one(*args), pairs):
                out[prof.name] = prof
    return out
