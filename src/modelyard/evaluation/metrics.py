"""The standard metrics of a task, computed by scikit-learn, plus permutation
feature importance for any model that predicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from modelyard.core.errors import InvalidParameter

__all__ = [
    "HIGHER_IS_BETTER",
    "TASKS",
    "classification_metrics",
    "permutation_importance",
    "regression_metrics",
]

TASKS = ("classification", "regression")

# For gates: which way is "better" for each metric we compute.
HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "mape": False,
}


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, labels: list
) -> tuple[dict[str, float], dict]:
    """Accuracy, precision, recall, F1 (binary, or macro-averaged for more classes),
    ROC AUC and log loss when probabilities are known, and the confusion matrix."""
    from sklearn import metrics as m

    binary = len(labels) == 2
    average = "binary" if binary else "macro"
    pos = labels[-1] if binary else 1
    kw: dict[str, Any] = {"average": average, "zero_division": 0}
    if binary:
        kw["pos_label"] = pos
    out = {
        "accuracy": float(m.accuracy_score(y_true, y_pred)),
        "precision": float(m.precision_score(y_true, y_pred, **kw)),
        "recall": float(m.recall_score(y_true, y_pred, **kw)),
        "f1": float(m.f1_score(y_true, y_pred, **kw)),
    }
    if proba is not None:
        try:
            if binary:
                out["roc_auc"] = float(m.roc_auc_score(y_true, proba[:, 1]))
            else:
                out["roc_auc"] = float(
                    m.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
                )
            out["log_loss"] = float(m.log_loss(y_true, proba, labels=labels))
        except ValueError:
            pass  # e.g. one class only in this sample: AUC is undefined
    matrix = m.confusion_matrix(y_true, y_pred, labels=labels)
    return out, {"labels": [_plain(x) for x in labels], "matrix": matrix.tolist()}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as m

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    return {
        "rmse": float(np.sqrt(m.mean_squared_error(y_true, y_pred))),
        "mae": float(m.mean_absolute_error(y_true, y_pred)),
        "r2": float(m.r2_score(y_true, y_pred)),
        "mape": float(m.mean_absolute_percentage_error(y_true, y_pred)),
    }


def permutation_importance(
    predict: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    y: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_repeats: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """How much ``score`` drops when each column is shuffled, averaged over repeats
    (scikit-learn's algorithm, through its implementation, for any predictor)."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    class _Predictor:  # scikit-learn calls scoring(estimator, X, y) only
        def fit(self, *_: Any) -> _Predictor:  # pragma: no cover - never called
            return self

    def scoring(_: Any, X_: pd.DataFrame, y_: np.ndarray) -> float:
        return score(np.asarray(y_), np.asarray(predict(X_)))

    result = sk_permutation_importance(
        _Predictor(), X, y, scoring=scoring, n_repeats=n_repeats, random_state=seed
    )
    return {col: float(v) for col, v in zip(X.columns, result.importances_mean, strict=True)}


def check_task(task: str) -> str:
    if task not in TASKS:
        raise InvalidParameter(f"Unknown task {task!r}: expected one of {', '.join(TASKS)}")
    return task


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x
