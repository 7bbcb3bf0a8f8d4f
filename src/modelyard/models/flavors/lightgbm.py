"""LightGBM Boosters and scikit-learn-API models, in LightGBM's native text file.

LightGBM cannot rebuild an ``LGBMClassifier`` from a model file, so the package
keeps the Booster and what the wrapper adds on top of it: for a classifier, its
``classes_`` (labels and dtype) in the manifest. At load, ``raw`` is the Booster;
``predict`` of a classifier maps the Booster's probabilities to labels (argmax), as
``LGBMClassifier.predict`` does, and ``predict_proba`` gives one column per class.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.core.errors import InvalidParameter
from modelyard.models.flavors import LoadOptions, Predictor, Saved, SaveOptions, from_package
from modelyard.models.manifest import Manifest

name = "lightgbm"
framework = "lightgbm"
MODEL_FILE = "model.lgb.txt"


def detect(model: Any) -> bool:
    return from_package(model, "lightgbm")


def save(model: Any, path: Path, options: SaveOptions) -> Saved:
    import lightgbm as lgb

    if isinstance(model, lgb.Booster):
        booster, wrapper = model, "Booster"
    elif isinstance(model, lgb.LGBMModel):
        booster, wrapper = model.booster_, type(model).__name__
    else:
        raise InvalidParameter(
            f"{type(model).__name__} is neither a lightgbm.Booster nor a LightGBM sklearn model"
        )
    booster.save_model(str(path / MODEL_FILE))
    loader: dict[str, Any] = {"model_file": MODEL_FILE, "wrapper": wrapper}
    if isinstance(model, lgb.LGBMClassifier):
        classes = np.asarray(model.classes_)
        loader["classes"] = classes.tolist()
        loader["classes_dtype"] = str(classes.dtype)
    return Saved(
        framework_version=version(framework),
        loader=loader,
        requirements=[framework] + (["scikit-learn"] if wrapper != "Booster" else []),
    )


def load(path: Path, manifest: Manifest, options: LoadOptions) -> Predictor:
    import lightgbm as lgb

    file = path / str(manifest.loader.get("model_file", MODEL_FILE))
    booster = lgb.Booster(model_file=str(file))
    if "classes" not in manifest.loader:
        return Predictor(booster, booster.predict)
    classes = np.asarray(manifest.loader["classes"], dtype=manifest.loader["classes_dtype"])

    def predict_proba(data: Any) -> np.ndarray:
        scores = booster.predict(data)
        if scores.ndim == 1:  # binary: P(class 1)
            return np.vstack((1.0 - scores, scores)).T
        return scores

    def predict(data: Any) -> np.ndarray:
        return classes[np.argmax(predict_proba(data), axis=1)]

    return Predictor(booster, predict, predict_proba)
