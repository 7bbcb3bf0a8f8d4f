"""`my.evaluate(model, data, target)`: the standard metrics of a model on a dataset,
its permutation feature importance, logged to a run so the registry, the model
card and the gates can read them back."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidParameter
from modelyard.core.ids import now_ms
from modelyard.evaluation.metrics import (
    check_task,
    classification_metrics,
    permutation_importance,
    regression_metrics,
)

__all__ = ["EvaluationResult", "evaluate", "load_table"]


@dataclass
class EvaluationResult:
    """What `evaluate` measured; ``run_id`` is the run it was logged to (if any)."""

    model: str
    task: str
    rows: int
    dataset_digest: str
    metrics: dict[str, float]
    confusion_matrix: dict | None = None
    feature_importance: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def load_table(data: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A DataFrame as given, or read from a Parquet or CSV file."""
    if isinstance(data, pd.DataFrame):
        return data
    path = str(data)
    if path.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if path.endswith(".csv"):
        return pd.read_csv(path)
    raise InvalidParameter(f"Cannot read {path!r}: give a DataFrame, a .parquet or a .csv file")


def _digest(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + ",".join(map(str, frame.columns)).encode()).hexdigest()


def _resolve_model(model: Any, allow_pickle: bool) -> tuple[Any, str]:
    if isinstance(model, str):
        from modelyard.models.loader import load_model

        return load_model(model, allow_pickle=allow_pickle), model
    if not hasattr(model, "predict"):
        raise InvalidParameter(
            f"evaluate needs a model URI or an object with predict(), got {type(model).__name__}"
        )
    return model, type(model).__name__


def evaluate(
    model: Any,
    data: pd.DataFrame | str | Path,
    target: str,
    *,
    task: str = "classification",
    log: bool = True,
    run_id: str | None = None,
    importance: bool = True,
    n_repeats: int = 3,
    allow_pickle: bool = False,
) -> EvaluationResult:
    """Evaluate ``model`` (a URI such as ``models:/churn@champion`` or a model object)
    on ``data`` against the ``target`` column.

    Classification: accuracy, precision, recall, F1, ROC AUC and log loss (when the
    model gives probabilities), the confusion matrix. Regression: RMSE, MAE, R²,
    MAPE. With ``log`` the metrics go to ``run_id``, the active run, or a new run of
    experiment "evaluation", as ``eval_<metric>``, with the confusion matrix and
    ``feature_importance.json`` as artifacts.
    """
    check_task(task)
    frame = load_table(data)
    if target not in frame.columns:
        raise InvalidParameter(
            f"Target column {target!r} is not in the data (columns: {', '.join(frame.columns)})"
        )
    if frame.empty:
        raise InvalidParameter("Cannot evaluate on an empty dataset")
    loaded, name = _resolve_model(model, allow_pickle)
    X = frame.drop(columns=[target])
    y = frame[target].to_numpy()

    def predict(inputs: pd.DataFrame) -> np.ndarray:
        return np.asarray(loaded.predict(inputs)).reshape(len(inputs), -1)[:, 0]

    y_pred = predict(X)
    matrix = None
    if task == "classification":
        labels = sorted(pd.unique(np.concatenate([y, y_pred])).tolist())
        proba = None
        if hasattr(loaded, "predict_proba"):
            try:
                proba = np.asarray(loaded.predict_proba(X))
            except (AttributeError, NotImplementedError, ValueError):
                proba = None
            if proba is not None and (proba.ndim != 2 or proba.shape[1] != len(labels)):
                proba = None  # classes the model knows differ from this sample's
        metrics, matrix = classification_metrics(y, y_pred, proba, labels)

        def score(t: np.ndarray, p: np.ndarray) -> float:
            return float(np.mean(t == p))
    else:
        metrics = regression_metrics(y, y_pred)

        def score(t: np.ndarray, p: np.ndarray) -> float:
            return -float(np.sqrt(np.mean((t.astype(float) - p.astype(float)) ** 2)))

    importances = (
        permutation_importance(predict, X, y, score, n_repeats=n_repeats) if importance else {}
    )
    result = EvaluationResult(
        model=name,
        task=task,
        rows=len(frame),
        dataset_digest=_digest(frame),
        metrics=metrics,
        confusion_matrix=matrix,
        feature_importance=dict(sorted(importances.items(), key=lambda kv: -kv[1])),
    )
    if log:
        result.run_id = _log(result, run_id)
    return result


def _log(result: EvaluationResult, run_id: str | None) -> str:
    from modelyard.sdk import fluent
    from modelyard.tracking.entities import Metric, RunTag

    svc = fluent.client()
    started = None
    if run_id is None:
        active = fluent.active_run()
        if active is not None:
            run_id = active.run_id
        else:
            exp = svc.get_or_create_experiment("evaluation")
            started = svc.create_run(exp.experiment_id, run_name=f"evaluate {result.model}")
            run_id = started.info.run_id
    now = now_ms()
    svc.log_batch(
        run_id,
        metrics=[Metric(f"eval_{k}", v, now, 0) for k, v in result.metrics.items()],
        tags=[
            RunTag("modelyard.eval_dataset", f"sha256:{result.dataset_digest[:16]}"),
            RunTag("modelyard.eval_rows", str(result.rows)),
            RunTag("modelyard.eval_model", result.model),
        ],
    )
    if result.confusion_matrix is not None:
        svc.log_dict(run_id, result.confusion_matrix, "evaluation/confusion_matrix.json")
    if result.feature_importance:
        svc.log_dict(run_id, result.feature_importance, "feature_importance.json")
    if started is not None:
        svc.end_run(run_id)
    return run_id
