"""Baselines: what a model version looked like on its training (or validation) data.

A baseline is the profile of the features, of the model's predictions on that data
and of the target, plus the evaluation metrics (the performance to hold production
to). It is stored as JSON in the artifact store beside the prediction log:
``<artifacts>/monitoring/baselines/<model>/<version>.json``, one per version, written
atomically (the artifact store's temp-then-rename), so a version's baseline is
replaced whole or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelyard.core.errors import InvalidParameter, ResourceNotFound
from modelyard.core.ids import now_ms
from modelyard.monitor.predictions import PREDICTION
from modelyard.monitor.profile import DatasetProfile, profile

__all__ = ["Baseline", "baseline_path", "build_baseline", "load_baseline", "save_baseline"]


@dataclass
class Baseline:
    """The reference for one model version. ``features`` are the input columns;
    the profile also holds ``prediction`` and, when given, the ``target``."""

    model: str
    version: str
    features: list[str]
    profile: DatasetProfile
    target: str | None = None
    task: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    created_at: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "features": self.features,
            "target": self.target,
            "task": self.task,
            "metrics": self.metrics,
            "rows": self.rows,
            "created_at": self.created_at,
            "profile": self.profile.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        return cls(
            model=data["model"],
            version=str(data["version"]),
            features=list(data["features"]),
            profile=DatasetProfile.from_dict(data["profile"]),
            target=data.get("target"),
            task=data.get("task"),
            metrics=dict(data.get("metrics") or {}),
            rows=int(data.get("rows", 0)),
            created_at=int(data.get("created_at", 0)),
        )


def baseline_path(model: str, version: str) -> str:
    return f"monitoring/baselines/{model}/{version}.json"


def build_baseline(
    model: str,
    version: str,
    data: pd.DataFrame,
    predictor: Any,
    *,
    target: str | None = None,
    task: str | None = "classification",
    metrics: dict[str, float] | None = None,
    categorical: Sequence[str] = (),
) -> Baseline:
    """Profile ``data`` (features and target) and ``predictor``'s predictions on it;
    with a target and no ``metrics``, evaluate them (`evaluation.metrics`)."""
    if data.empty:
        raise InvalidParameter("A baseline needs data: the frame is empty")
    if target is not None and target not in data.columns:
        raise InvalidParameter(
            f"Target column {target!r} is not in the data (columns: {', '.join(data.columns)})"
        )
    features = [c for c in data.columns if c != target]
    predicted = np.asarray(predictor.predict(data[features]))
    predicted = predicted.reshape(len(data), -1)[:, 0]
    frame = data.assign(**{PREDICTION: predicted})
    kinds = list(categorical)
    if task == "classification":
        kinds += [PREDICTION] + ([target] if target else [])
    prof = profile(frame, categorical=kinds)
    if metrics is None and target is not None:
        metrics = _evaluate(data[target].to_numpy(), predicted, task)
    return Baseline(
        model, str(version), features, prof, target, task, dict(metrics or {}), len(data)
    )


def _evaluate(y: np.ndarray, y_pred: np.ndarray, task: str | None) -> dict[str, float]:
    from modelyard.evaluation.metrics import classification_metrics, regression_metrics

    if task == "regression":
        return regression_metrics(y, y_pred)
    labels = sorted(pd.unique(np.concatenate([y, y_pred])).tolist())
    metrics, _ = classification_metrics(y, y_pred, None, labels)
    return metrics


def save_baseline(store: Any, baseline: Baseline) -> str:
    """Write ``baseline`` to the artifact ``store``; returns its path there."""
    path = baseline_path(baseline.model, baseline.version)
    store.put_bytes(orjson.dumps(baseline.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY), path)
    return path


def load_baseline(store: Any, model: str, version: str) -> Baseline:
    path = baseline_path(model, str(version))
    if not store.exists(path):
        raise ResourceNotFound(
            f"Model {model!r} version {version} has no monitoring baseline: create one with "
            f"`modelyard monitor baseline models:/{model}/{version} --data TRAINING_DATA`"
        )
    return Baseline.from_dict(orjson.loads(store.read_bytes(path)))
