"""Data quality of a production window against the reference profile: schema
violations, missing values, values outside the reference's range, unseen categories.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelyard.monitor.columns import CATEGORICAL, NUMERICAL
from modelyard.monitor.profile import DatasetProfile

__all__ = ["ColumnQuality", "QualityReport", "data_quality"]


@dataclass
class ColumnQuality:
    column: str
    kind: str
    rows: int = 0
    missing_rate: float = 0.0
    reference_missing_rate: float = 0.0
    out_of_range_rate: float = 0.0  # numerical: outside the reference's [min, max]
    unseen_rate: float = 0.0  # categorical: values the reference never had
    unseen: list[str] = field(default_factory=list)
    problem: str | None = None  # a schema violation


@dataclass
class QualityReport:
    columns: list[ColumnQuality]
    missing_columns: list[str]
    unexpected_columns: list[str]

    @property
    def schema_violations(self) -> list[str]:
        out = [f"missing column {c!r}" for c in self.missing_columns]
        out += [f"unexpected column {c!r}" for c in self.unexpected_columns]
        out += [f"{c.column}: {c.problem}" for c in self.columns if c.problem]
        return out

    def worst(self, attribute: str) -> float:
        return max((getattr(c, attribute) for c in self.columns), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_violations": self.schema_violations,
            "missing_columns": self.missing_columns,
            "unexpected_columns": self.unexpected_columns,
            "columns": [asdict(c) for c in self.columns],
        }


def data_quality(
    reference: DatasetProfile, window: pd.DataFrame, features: list[str] | None = None
) -> QualityReport:
    """Per-column quality of ``window``'s ``features`` (default: the reference's)."""
    names = features if features is not None else list(reference.columns)
    missing = [c for c in names if c not in window.columns]
    unexpected = [
        c for c in window.columns if c not in reference.columns and c not in _META_COLUMNS
    ]
    out = []
    for name in names:
        ref = reference.columns.get(name)
        if ref is None or name not in window.columns:
            continue
        col = window[name]
        q = ColumnQuality(name, ref.kind, rows=len(col))
        q.reference_missing_rate = ref.missing_rate
        if len(col) == 0:
            out.append(q)
            continue
        q.missing_rate = float(col.isna().mean())
        present = col.dropna()
        if ref.kind == NUMERICAL:
            values = pd.to_numeric(present, errors="coerce")
            not_numbers = int(values.isna().sum())
            if not_numbers:
                q.problem = f"{not_numbers} value(s) are not numbers (the reference is numerical)"
            values = values.dropna().to_numpy(dtype=float)
            if values.size and ref.min is not None:
                outside = (values < ref.min) | (values > ref.max) | ~np.isfinite(values)
                q.out_of_range_rate = float(outside.sum() / len(col))
        elif ref.kind == CATEGORICAL:
            known = set(ref.categories or {})
            if known and not ref.other:  # every category the reference had is known
                as_text = present.astype(str)
                new = ~as_text.isin(known)
                q.unseen_rate = float(new.sum() / len(col))
                q.unseen = sorted(as_text[new].unique().tolist())[:20]
        out.append(q)
    return QualityReport(out, missing, unexpected)


_META_COLUMNS = {"request_id", "timestamp_ms", "version", "variant", "latency_ms", "label"}
