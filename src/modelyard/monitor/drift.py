"""Data and prediction drift: ``drift(reference, current)`` → a `DriftReport`.

Both sides may be DataFrames, Arrow tables, Parquet paths, or `DatasetProfile`s.
From raw data each numerical column is sorted once and every statistic comes from
the sorted arrays (KS and Wasserstein exactly as scipy computes them); columns run
in parallel threads, a Parquet file is read a few columns at a time. From profiles
(no raw data) the same statistics come from the fine histograms: PSI, Jensen–Shannon
and chi-square are identical, KS and Wasserstein are close approximations.

**The automatic method**, by column kind and the reference's non-missing count n
(the same split as Evidently's ``DataDriftPreset``, which our users know):

==============  ===================================  ==========================
kind            n ≤ 1000                             n > 1000
==============  ===================================  ==========================
numerical       KS test, drift when p < 0.05         Wasserstein / std(ref) ≥ 0.1
categorical     chi-square, p < 0.05 (two           Jensen–Shannon ≥ 0.1
                categories: two-proportion z-test)
==============  ===================================  ==========================

Tests on small samples, distances on large ones: on a large sample a test flags
shifts far too small to matter. Where we differ from Evidently: our chi-square is a
two-sample contingency test (``scipy.stats.chi2_contingency`` on reference and
current counts) where Evidently's treats the reference frequencies as fixed
expected counts (a goodness-of-fit test), which ignores the reference's own sampling
noise and raises false alarms as samples grow. PSI and Jensen–Shannon are computed
on the reference's deciles (numerical; Evidently uses equal-width bins over both
samples, which needs the raw data) or categories. Jensen–Shannon uses the natural
log, as scipy's default and Evidently do, so a threshold of 0.1 means the same.

The dataset drifts when the share of drifted columns reaches ``drift_share`` (0.5).
Bad input (empty windows, all-null columns, a column on one side only, mismatched
types) never raises: the column carries a ``message`` and is not counted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.core.errors import InvalidParameter
from modelyard.monitor.columns import (
    CATEGORICAL,
    NUMERICAL,
    TableSource,
    batches,
    category_counts,
    numeric_values,
)
from modelyard.monitor.profile import (
    COLUMN_BATCH,
    ColumnProfile,
    DatasetProfile,
    categorical_profile,
    column_kinds,
    numeric_profile,
)
from modelyard.stats import (
    chi2_from_counts,
    jensen_shannon_from_counts,
    ks_from_counts,
    ks_sorted,
    psi_from_counts,
    two_proportion_ztest,
    wasserstein_from_counts,
    wasserstein_sorted,
)

__all__ = ["ColumnDrift", "DriftReport", "METHODS", "choose_method", "drift"]

# method -> (what the threshold bounds, default threshold, kinds it applies to)
METHODS: dict[str, tuple[str, float, tuple[str, ...]]] = {
    "ks": ("p_value", 0.05, (NUMERICAL,)),
    "wasserstein": ("distance", 0.1, (NUMERICAL,)),
    "psi": ("distance", 0.1, (NUMERICAL, CATEGORICAL)),
    "jensen_shannon": ("distance", 0.1, (NUMERICAL, CATEGORICAL)),
    "chi2": ("p_value", 0.05, (CATEGORICAL,)),
    "z": ("p_value", 0.05, (CATEGORICAL,)),
}
SMALL_SAMPLE = 1000  # reference values at or below which tests are used, above distances
MIN_STD = 1e-3  # Wasserstein's divisor floor (a constant reference), as Evidently's
DECILES = 10
JS_BASE = None  # natural log, as scipy's default and Evidently: 0.1 means the same there


@dataclass
class ColumnDrift:
    """One column's verdict. ``statistic`` is the p-value's test statistic for tests
    and the distance for distances; ``drifted`` is False with a ``message`` when the
    column could not be compared."""

    name: str
    kind: str
    method: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    drifted: bool = False
    message: str | None = None
    new_categories: list[str] = field(default_factory=list)
    reference: ColumnProfile | None = None
    current: ColumnProfile | None = None

    @property
    def score(self) -> float | None:
        """What the threshold is compared with: the p-value or the distance."""
        if self.method is None:
            return None
        return self.p_value if METHODS[self.method][0] == "p_value" else self.statistic

    def to_dict(self, profiles: bool = False) -> dict[str, Any]:
        out = {
            "column": self.name,
            "kind": self.kind,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "message": self.message,
            "new_categories": self.new_categories,
            "reference_missing_rate": self.reference.missing_rate if self.reference else None,
            "current_missing_rate": self.current.missing_rate if self.current else None,
        }
        if profiles:
            from dataclasses import asdict

            out["reference"] = asdict(self.reference) if self.reference else None
            out["current"] = asdict(self.current) if self.current else None
        return out


@dataclass
class DriftReport:
    """Per-column verdicts and the dataset's."""

    columns: list[ColumnDrift]
    drift_share: float
    reference_rows: int
    current_rows: int
    seconds: float = 0.0

    @property
    def evaluated(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.method is not None]

    @property
    def drifted_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        evaluated = self.evaluated
        return len(self.drifted_columns) / len(evaluated) if evaluated else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.evaluated) and self.share_drifted >= self.drift_share

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self, profiles: bool = False) -> dict[str, Any]:
        return {
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "drift_share": self.drift_share,
            "drifted_columns": self.drifted_columns,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "seconds": self.seconds,
            "columns": [c.to_dict(profiles) for c in self.columns],
        }

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.columns])


def choose_method(kind: str, reference_count: int, categories: int = 0) -> str:
    """The automatic method (see the module docstring)."""
    if kind == NUMERICAL:
        return "ks" if reference_count <= SMALL_SAMPLE else "wasserstein"
    if reference_count <= SMALL_SAMPLE:
        return "z" if categories <= 2 else "chi2"
    return "jensen_shannon"


def drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    method: str | Mapping[str, str] | None = None,
    threshold: float | Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    workers: int | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference``, column by column.

    Args:
        reference, current: DataFrames, Arrow tables, Parquet paths, or profiles
            (a reference `DatasetProfile` and a window counted on its bins, or raw
            data that is counted on them here).
        columns: the columns to compare (default: all of the reference's).
        categorical: columns to treat as categories whatever their type.
        method: None for the automatic choice; one method name for every column it
            applies to; or ``{"numerical": ..., "categorical": ..., "<column>": ...}``.
        threshold: one value for every method, or per method name.
        drift_share: the share of drifted columns at which the dataset drifts.
        workers: threads (default: the CPU count).
    """
    started = time.perf_counter()
    if not 0 < drift_share <= 1:
        raise InvalidParameter(f"drift_share must be in (0, 1], got {drift_share!r}")
    _check_methods(method, threshold)
    if isinstance(reference, DatasetProfile) or isinstance(current, DatasetProfile):
        report = _drift_from_profiles(reference, current, columns, method, threshold, drift_share)
    else:
        report = _drift_from_data(
            reference, current, columns, categorical, method, threshold, drift_share, workers
        )
    report.seconds = time.perf_counter() - started
    return report


def _check_methods(method: Any, threshold: Any) -> None:
    names = [method] if isinstance(method, str) else list((method or {}).values())
    for name in names:
        if name not in METHODS:
            raise InvalidParameter(
                f"Unknown drift method {name!r}; choose from {', '.join(METHODS)}"
            )
    thresholds = threshold.items() if isinstance(threshold, Mapping) else []
    for name, _ in thresholds:
        if name not in METHODS:
            raise InvalidParameter(f"threshold for unknown method {name!r}")
    values = [v for _, v in thresholds] or ([threshold] if threshold is not None else [])
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InvalidParameter(f"thresholds must be positive numbers, got {value!r}")


def _method_for(name: str, kind: str, n: int, categories: int, method: Any) -> str | None:
    """The method for one column, or None when the requested one does not apply."""
    chosen = None
    if isinstance(method, str):
        chosen = method if kind in METHODS[method][2] else None
        return chosen or choose_method(kind, n, categories)
    if isinstance(method, Mapping):
        chosen = method.get(name) or method.get(kind)
    if chosen is None:
        return choose_method(kind, n, categories)
    return chosen if kind in METHODS[chosen][2] else None


def _threshold_for(method: str, threshold: Any) -> float:
    if isinstance(threshold, Mapping):
        return float(threshold.get(method, METHODS[method][1]))
    return float(threshold) if threshold is not None else METHODS[method][1]


# --------------------------------------------------------------------- from raw data


def _drift_from_data(
    reference, current, columns, categorical, method, threshold, drift_share, workers
) -> DriftReport:
    ref = TableSource(reference, "reference")
    cur = TableSource(current, "current")
    names = list(columns) if columns is not None else ref.names
    absent = [c for c in names if c not in ref.schema.names]
    if columns is not None and absent:
        raise InvalidParameter(f"reference has no column(s): {', '.join(absent)}")
    out: dict[str, ColumnDrift] = {}
    both = [c for c in names if c in cur.schema.names]
    for name in names:
        if name not in cur.schema.names:
            out[name] = ColumnDrift(name, "unknown", message="column missing from the current data")
    if columns is None:
        for name in cur.names:
            if name not in ref.schema.names:
                out[name] = ColumnDrift(name, "unknown", message="column only in the current data")
    kinds = column_kinds(ref, both, categorical)

    def one(name: str, ref_col, cur_col) -> ColumnDrift:
        kind = kinds[name]
        if kind is None:
            if ref_col.null_count == len(ref_col):  # all-None object columns arrive as null
                return ColumnDrift(
                    name, "unknown", message="the reference has no values (all missing)"
                )
            return ColumnDrift(name, "unsupported", message=f"type {ref_col.type} is not monitored")
        if kind == CATEGORICAL:
            r_counts, r_missing = category_counts(ref_col)
            c_counts, c_missing = category_counts(cur_col)
            return _compare(
                name,
                categorical_profile(name, r_counts, r_missing),
                categorical_profile(name, c_counts, c_missing),
                method,
                threshold,
            )
        try:
            c_values, c_missing = numeric_values(cur_col)
        except Exception:  # noqa: BLE001 - strings where the reference has numbers
            return ColumnDrift(
                name,
                kind,
                message=f"type mismatch: reference is numerical, current is {cur_col.type}",
            )
        r_values, r_missing = numeric_values(ref_col)
        r_sorted, c_sorted = np.sort(r_values), np.sort(c_values)
        r_prof = numeric_profile(name, r_sorted, r_missing)
        c_prof = numeric_profile(name, c_sorted, c_missing, r_prof.edges)
        return _compare(name, r_prof, c_prof, method, threshold, (r_sorted, c_sorted))

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for group in batches(both, COLUMN_BATCH):
            r_data, c_data = ref.read(group), cur.read(group)
            pairs = [(n, r_data[n], c_data[n]) for n in group]
            for result in pool.map(lambda args: one(*args), pairs):
                out[result.name] = result
    ordered = [out[n] for n in names] + [v for k, v in out.items() if k not in names]
    return DriftReport(ordered, drift_share, ref.rows, cur.rows)


# --------------------------------------------------------------------- from profiles


def _drift_from_profiles(reference, current, columns, method, threshold, drift_share):
    if isinstance(reference, DatasetProfile) and not isinstance(current, DatasetProfile):
        current = reference.profile(current)  # a raw window: count it on the reference's bins
    if not isinstance(current, DatasetProfile) or not isinstance(reference, DatasetProfile):
        raise InvalidParameter(
            "Profiles compare with profiles: give a reference profile and a window "
            "profiled on it (reference_profile.profile(window))"
        )
    names = list(columns) if columns is not None else list(reference.columns)
    out = []
    for name in names:
        r = reference.columns.get(name)
        c = current.columns.get(name)
        if r is None or c is None:
            side = "reference" if r is None else "current"
            out.append(
                ColumnDrift(name, "unknown", message=f"column missing from the {side} profile")
            )
            continue
        unprofiled = r.message or c.message  # _compare reports why
        if r.kind == NUMERICAL and c.kind == NUMERICAL and r.edges != c.edges and not unprofiled:
            out.append(
                ColumnDrift(
                    name, r.kind, message="the window was not counted on this reference's bins"
                )
            )
            continue
        out.append(_compare(name, r, c, method, threshold))
    return DriftReport(out, drift_share, reference.rows, current.rows)


# --------------------------------------------------------------------- one column


def _compare(
    name: str,
    r: ColumnProfile,
    c: ColumnProfile,
    method: Any,
    threshold: Any,
    sorted_values: tuple[np.ndarray, np.ndarray] | None = None,
) -> ColumnDrift:
    """The verdict for one column from its two profiles (and, when computed from raw
    data, the sorted values for the exact KS and Wasserstein)."""
    result = ColumnDrift(name, r.kind, reference=r, current=c)
    if r.message or c.message:
        result.message = r.message or c.message
        return result
    if r.kind != c.kind:
        result.message = f"type mismatch: reference is {r.kind}, current is {c.kind}"
        return result
    if r.count == 0:
        result.message = "the reference has no values (all missing)"
        return result
    if c.count == 0:
        result.message = "the current window has no values (empty or all missing)"
        return result
    categories = 0
    if r.kind == CATEGORICAL:
        ref_cats = r.categories or {}
        result.new_categories = [k for k in (c.categories or {}) if k not in ref_cats]
        categories = len(set(ref_cats) | set(c.categories or {}))
    chosen = _method_for(name, r.kind, r.count, categories, method)
    if chosen is None:
        result.message = f"the requested method does not apply to a {r.kind} column"
        return result
    result.method = chosen
    result.threshold = _threshold_for(chosen, threshold)
    if r.kind == CATEGORICAL:
        _categorical(result, r, c, chosen)
    else:
        _numerical(result, r, c, chosen, sorted_values)
    kind = METHODS[chosen][0]
    if kind == "p_value":
        result.drifted = bool(result.p_value < result.threshold)
    else:
        result.drifted = bool(result.statistic >= result.threshold)
    return result


def _categorical(result: ColumnDrift, r: ColumnProfile, c: ColumnProfile, method: str) -> None:
    keys = list(r.categories or {}) + result.new_categories
    rc = np.array([(r.categories or {}).get(k, 0) for k in keys] + [r.other], dtype=float)
    cc = np.array([(c.categories or {}).get(k, 0) for k in keys] + [c.other], dtype=float)
    if method == "chi2":
        res = chi2_from_counts(rc, cc)
        result.statistic, result.p_value = res.statistic, res.p_value
    elif method == "z":
        first = 0  # the share of the reference's most frequent category
        res = two_proportion_ztest(int(rc[first]), int(rc.sum()), int(cc[first]), int(cc.sum()))
        result.statistic, result.p_value = res.statistic, res.p_value
    elif method == "jensen_shannon":
        result.statistic = jensen_shannon_from_counts(rc, cc, base=JS_BASE)
    else:
        result.statistic = psi_from_counts(rc, cc)


def _numerical(
    result: ColumnDrift,
    r: ColumnProfile,
    c: ColumnProfile,
    method: str,
    sorted_values: tuple[np.ndarray, np.ndarray] | None,
) -> None:
    if method in ("psi", "jensen_shannon"):
        rc, cc = _deciles(r.counts, c.counts)
        if method == "psi":
            result.statistic = psi_from_counts(rc, cc)
        else:
            result.statistic = jensen_shannon_from_counts(rc, cc, base=JS_BASE)
    elif method == "ks":
        res = ks_sorted(*sorted_values) if sorted_values else ks_from_counts(r.counts, c.counts)
        result.statistic, result.p_value = res.statistic, res.p_value
    else:  # wasserstein, in reference standard deviations
        if sorted_values:
            distance = wasserstein_sorted(*sorted_values)
        else:
            low, high = min(r.min, c.min), max(r.max, c.max)
            distance = wasserstein_from_counts(
                r.edges, r.counts, c.counts, low, high, r.sums, c.sums
            )
        result.statistic = distance / max(r.std, MIN_STD)


def _deciles(ref_counts: Sequence[int], cur_counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Fine reference-quantile bins merged into (about) ten of equal reference share."""
    r = np.asarray(ref_counts, dtype=float)
    c = np.asarray(cur_counts, dtype=float)
    share = np.cumsum(r) / r.sum()
    cuts = np.unique(np.searchsorted(share, np.arange(1, DECILES) / DECILES - 1e-9))
    groups = np.concatenate([[0], cuts + 1])
    groups = groups[groups < r.size]
    return np.add.reduceat(r, groups), np.add.reduceat(c, groups)
