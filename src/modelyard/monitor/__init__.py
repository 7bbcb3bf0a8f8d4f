"""Production monitoring: profiles, drift, data quality, performance, alerts.

``monitor.drift(reference, current)`` works on plain DataFrames, Parquet files or
saved profiles, with or without serving:

    >>> import pandas as pd
    >>> from modelyard import monitor
    >>> ref = pd.DataFrame({"x": range(2000), "c": ["a", "b"] * 1000})
    >>> report = monitor.drift(ref, ref)
    >>> report.dataset_drift, [c.method for c in report.columns]
    (False, ['wasserstein', 'jensen_shannon'])
"""

from __future__ import annotations

from modelyard.monitor.drift import METHODS, ColumnDrift, DriftReport, choose_method, drift
from modelyard.monitor.profile import ColumnProfile, DatasetProfile, profile

__all__ = [
    "METHODS",
    "ColumnDrift",
    "ColumnProfile",
    "DatasetProfile",
    "DriftReport",
    "choose_method",
    "drift",
    "profile",
]
