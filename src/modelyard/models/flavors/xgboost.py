"""XGBoost Boosters and scikit-learn-API models, in XGBoost's native UBJSON file.

The manifest records the wrapper class (``Booster``, ``XGBClassifier``, ...); at load
that class is looked up by name in the ``xgboost`` package only (never an arbitrary
import) and rebuilt with its own ``load_model``. A Booster predicts with
``inplace_predict`` on the DataFrame or array it is given.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.models.flavors import LoadOptions, Predictor, Saved, SaveOptions, from_package
from modelyard.models.manifest import Manifest

name = "xgboost"
framework = "xgboost"
MODEL_FILE = "model.ubj"


def detect(model: Any) -> bool:
    return from_package(model, "xgboost")


def _wrapper_name(model: Any) -> str:
    """The nearest class of ``model`` that the ``xgboost`` package exports."""
    import xgboost as xgb

    for cls in type(model).__mro__:
        if getattr(xgb, cls.__name__, None) is cls and (
            cls is xgb.Booster or issubclass(cls, xgb.XGBModel)
        ):
            return cls.__name__
    raise InvalidParameter(
        f"{type(model).__name__} is neither an xgboost.Booster nor an xgboost sklearn model"
    )


def save(model: Any, path: Path, options: SaveOptions) -> Saved:
    wrapper = _wrapper_name(model)
    model.save_model(str(path / MODEL_FILE))
    return Saved(
        framework_version=version(framework),
        loader={"model_file": MODEL_FILE, "wrapper": wrapper},
        requirements=[framework] + (["scikit-learn"] if wrapper != "Booster" else []),
    )


def load(path: Path, manifest: Manifest, options: LoadOptions) -> Predictor:
    import xgboost as xgb

    wrapper = str(manifest.loader.get("wrapper", "Booster"))
    cls = getattr(xgb, wrapper, None)
    if not (cls is xgb.Booster or (isinstance(cls, type) and issubclass(cls, xgb.XGBModel))):
        raise InvalidParameter(
            f"Model package {str(path)!r} names wrapper {wrapper!r}, which is not an "
            "xgboost model class"
        )
    file = str(path / str(manifest.loader.get("model_file", MODEL_FILE)))
    if cls is xgb.Booster:
        booster = xgb.Booster()
        booster.load_model(file)
        return Predictor(booster, booster.inplace_predict)
    model = cls()
    model.load_model(file)
    return Predictor(model, model.predict, getattr(model, "predict_proba", None))
