"""Concept drift: model quality over time from labels that arrive late.

Predictions are joined to their labels by request id and cut into time windows by
prediction time. A window younger than the label delay is **pending**: its labels
may still come, and judging it early would report a drop that is only missing
labels. Each window's metrics sit beside the baseline's, with the label coverage.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidParameter
from modelyard.core.ids import now_ms as _now_ms
from modelyard.monitor.predictions import PREDICTION

__all__ = ["PerformancePoint", "PerformanceReport", "join_labels", "performance"]

LABEL = "label"


@dataclass
class PerformancePoint:
    start_ms: int
    end_ms: int
    rows: int
    labelled: int
    metrics: dict[str, float] = field(default_factory=dict)
    pending: bool = False  # younger than the label delay

    @property
    def coverage(self) -> float:
        return self.labelled / self.rows if self.rows else 0.0


@dataclass
class PerformanceReport:
    task: str
    baseline: dict[str, float]
    window_ms: int
    label_delay_ms: int
    points: list[PerformancePoint]

    def latest(self) -> PerformancePoint | None:
        """The newest window that is due and has labels."""
        due = [p for p in self.points if not p.pending and p.labelled]
        return due[-1] if due else None

    def change(self, metric: str) -> float | None:
        """The latest due window's ``metric`` minus the baseline's."""
        point = self.latest()
        if point is None or metric not in point.metrics or metric not in self.baseline:
            return None
        return point.metrics[metric] - self.baseline[metric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "baseline": self.baseline,
            "window_ms": self.window_ms,
            "label_delay_ms": self.label_delay_ms,
            "points": [asdict(p) | {"coverage": p.coverage} for p in self.points],
        }


def join_labels(predictions: pd.DataFrame, feedback: list[dict[str, Any]]) -> pd.DataFrame:
    """``predictions`` with a ``label`` column from feedback rows (by request id)."""
    labels = {f["request_id"]: f.get("label") for f in feedback if f.get("label") is not None}
    out = predictions.copy()
    out[LABEL] = out["request_id"].map(labels) if len(out) else pd.Series(dtype=object)
    return out


def _metrics(task: str, y: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from modelyard.evaluation.metrics import classification_metrics, regression_metrics

    if task == "regression":
        return regression_metrics(y.astype(float), y_pred.astype(float))
    labels = sorted(pd.unique(np.concatenate([y, y_pred])).tolist(), key=str)
    with warnings.catch_warnings():  # a window with one class: sklearn warns, metrics hold
        warnings.simplefilter("ignore", UserWarning)
        metrics, _ = classification_metrics(y, y_pred, None, labels)
    return metrics


def _aligned(labels: pd.Series, predictions: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Labels arrive as JSON values: give them the predictions' type."""
    if pd.api.types.is_numeric_dtype(predictions):
        y = pd.to_numeric(labels, errors="coerce")
        keep = y.notna().to_numpy()
        return y.to_numpy()[keep], predictions.to_numpy()[keep]
    return labels.astype(str).to_numpy(), predictions.astype(str).to_numpy()


def performance(
    joined: pd.DataFrame,
    *,
    task: str = "classification",
    baseline: dict[str, float] | None = None,
    window_ms: int = 3_600_000,
    label_delay_ms: int = 0,
    now_ms: int | None = None,
) -> PerformanceReport:
    """Metrics per ``window_ms`` of prediction time over ``joined`` (predictions with
    a ``label`` column, see `join_labels`)."""
    if task not in ("classification", "regression"):
        raise InvalidParameter(f"task must be classification or regression, got {task!r}")
    if window_ms <= 0 or label_delay_ms < 0:
        raise InvalidParameter("window_ms must be positive and label_delay_ms not negative")
    now = _now_ms() if now_ms is None else now_ms
    points = []
    if len(joined):
        for column in (PREDICTION, "timestamp_ms"):
            if column not in joined.columns:
                raise InvalidParameter(f"The predictions have no {column!r} column")
        # windows end at now - label_delay, now - label_delay - window, ...: the newest
        # due window is as recent as the delay allows; younger predictions are pending
        due_end = now - label_delay_ms
        stamps = joined["timestamp_ms"].to_numpy(dtype=np.int64)
        index = np.where(stamps >= due_end, -1, (due_end - 1 - stamps) // window_ms)
        for k in sorted(np.unique(index), reverse=True):
            rows = joined[index == k]
            if k < 0:
                start, end = due_end, now
            else:
                end = due_end - int(k) * window_ms
                start = end - window_ms
            labelled = rows[rows[LABEL].notna()] if LABEL in rows else rows.iloc[:0]
            point = PerformancePoint(
                int(start), int(end), len(rows), len(labelled), pending=bool(k < 0)
            )
            if len(labelled):
                y, y_pred = _aligned(labelled[LABEL], labelled[PREDICTION])
                if len(y):
                    point.metrics = _metrics(task, y, y_pred)
            points.append(point)
    return PerformanceReport(task, dict(baseline or {}), window_ms, label_delay_ms, points)
