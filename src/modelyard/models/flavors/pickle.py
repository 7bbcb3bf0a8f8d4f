"""Any Python object, stored with joblib (or pickle when joblib is not installed).

Only on explicit request: saving needs ``allow_pickle=True``, and so does loading,
because unpickling a file can run arbitrary code. The manifest says
``pickle: true`` so the package refuses before this module opens the file.
"""

from __future__ import annotations

import pickle as _pickle
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.models.flavors import (
    PICKLE_LOAD_REFUSED,
    LoadOptions,
    Predictor,
    Saved,
    SaveOptions,
    UnsafeModelError,
)
from modelyard.models.manifest import Manifest
from modelyard.models.requirements import distributions_for_modules

name = "pickle"
framework = "python"


def detect(model: Any) -> bool:
    return False  # never chosen automatically: only with allow_pickle=True


def save(model: Any, path: Path, options: SaveOptions) -> Saved:
    if not options.allow_pickle:
        raise UnsafeModelError(
            "Saving with pickle needs allow_pickle=True: whoever loads a pickle runs "
            "whatever code it holds, so it is never used silently. Prefer a safe flavor "
            "(sklearn via skops, xgboost, lightgbm, onnx, pyfunc) when one fits."
        )
    _entry(model)
    try:
        import joblib
    except ImportError:  # pragma: no cover - joblib comes with scikit-learn
        joblib = None
    if joblib is not None:
        file, fmt = "model.joblib", "joblib"
        joblib.dump(model, path / file)
    else:  # pragma: no cover
        file, fmt = "model.pkl", "pickle"
        with open(path / file, "wb") as out:
            _pickle.dump(model, out, protocol=_pickle.HIGHEST_PROTOCOL)
    dists = distributions_for_modules([type(model).__module__])
    return Saved(
        framework_version=version(dists[0]) if dists else sys.version.split()[0],
        framework=dists[0] if dists else framework,
        loader={"model_file": file, "format": fmt},
        requirements=[*dists, *(["joblib"] if fmt == "joblib" else [])],
        pickle=True,
    )


def load(path: Path, manifest: Manifest, options: LoadOptions) -> Predictor:
    if not options.allow_pickle:
        raise UnsafeModelError(f"Model package {str(path)!r} is a pickle. {PICKLE_LOAD_REFUSED}")
    file = path / str(manifest.loader["model_file"])
    if manifest.loader.get("format") == "joblib":
        import joblib

        model = joblib.load(file)
    else:
        with open(file, "rb") as f:
            model = _pickle.load(f)  # noqa: S301 - opted in with allow_pickle=True
    return Predictor(model, _entry(model), getattr(model, "predict_proba", None))


def _entry(model: Any) -> Any:
    """``model.predict``, or the object itself when it is a plain callable."""
    predict = getattr(model, "predict", None)
    if predict is None and callable(model):
        predict = model
    if predict is None:
        raise InvalidParameter(
            f"{type(model).__name__} has no predict method and is not callable: nothing to serve"
        )
    return predict
