"""scikit-learn estimators and pipelines, stored with skops (no pickle).

skops only rebuilds the types it trusts by default (scikit-learn's, numpy's, ...).
A model holding any other type (a custom estimator, a function) is refused at save
unless the user lists those types in ``trusted=[...]``; they go into the manifest,
and loading allows exactly those. Loading refuses any type outside skops' defaults
that the manifest does not list, and names them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.models.flavors import (
    LoadOptions,
    Predictor,
    Saved,
    SaveOptions,
    UnsafeModelError,
    from_package,
)
from modelyard.models.manifest import Manifest
from modelyard.models.requirements import distributions_for_modules

name = "sklearn"
framework = "scikit-learn"
MODEL_FILE = "model.skops"


def detect(model: Any) -> bool:
    return from_package(model, "sklearn")


def save(model: Any, path: Path, options: SaveOptions) -> Saved:
    import skops.io as sio

    _entry(model)
    file = path / MODEL_FILE
    sio.dump(model, file)
    untrusted = sio.get_untrusted_types(file=file)
    refused = [t for t in untrusted if t not in options.trusted]
    if refused:
        raise UnsafeModelError(
            f"This model holds types skops does not trust by default: {', '.join(refused)}. "
            "Loading them imports and runs their code. If you trust them, save with "
            f"trusted={refused!r}: they are recorded in the manifest and allowed at load."
        )
    return Saved(
        framework_version=version(framework),
        loader={"model_file": MODEL_FILE},
        requirements=[framework, "skops", *distributions_for_modules(untrusted)],
        trusted=sorted(options.trusted),
    )


def load(path: Path, manifest: Manifest, options: LoadOptions) -> Predictor:
    import skops.io as sio

    file = path / str(manifest.loader.get("model_file", MODEL_FILE))
    untrusted = sio.get_untrusted_types(file=file)
    refused = [t for t in untrusted if t not in manifest.trusted]
    if refused:
        raise UnsafeModelError(
            f"Model package {str(path)!r} holds types skops does not trust by default and "
            f"that were not trusted when it was saved: {', '.join(refused)}. Loading them "
            "would import and run their code; re-save the model with "
            f"trusted={refused!r} if you trust them."
        )
    model = sio.load(file, trusted=untrusted)
    return Predictor(
        model,
        _entry(model),
        getattr(model, "predict_proba", None),
        accepts_matrix=lambda columns: _accepts_matrix(model, columns),
    )


def _accepts_matrix(model: Any, columns: Sequence[str]) -> bool:
    """An estimator fitted on these columns in this order computes the same from the
    bare array; scikit-learn's DataFrame checks cost ~1 ms per call, the array ~0.2 ms.
    Its warning that the array has no column names is then silenced (they were checked)."""
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is None or list(fitted) != list(columns):
        return False
    warnings.filterwarnings(
        "ignore", message="X does not have valid feature names", category=UserWarning
    )
    return True


def _entry(model: Any) -> Any:
    """``predict``, or ``transform`` for a transformer-only pipeline."""
    method = getattr(model, "predict", None) or getattr(model, "transform", None)
    if method is None:
        raise InvalidParameter(
            f"{type(model).__name__} has neither predict nor transform: nothing to serve"
        )
    return method
