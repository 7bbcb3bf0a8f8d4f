"""Model packages: save a model to a folder, verify a folder, load it back.

A package is a folder::

    modelyard-model.yaml     the manifest (flavor, signature, requirements, hashes, ...)
    model.skops              the flavor's files (model.ubj, model.lgb.txt, model.onnx, ...)
    input_example.json       when an input example was given
    requirements.txt         the pinned requirements, for pip
    code/  artifacts/        custom Python models only

Saving writes everything into a temporary sibling folder and renames it into place
last, so a package folder is either complete or absent. Loading re-hashes every file
the manifest lists and refuses any mismatch, missing file or extra file before a
single byte is deserialised.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelyard.core.errors import ArtifactIntegrityError, InvalidParameter, ResourceAlreadyExists
from modelyard.core.ids import now_ms
from modelyard.models.flavors import (
    PICKLE_LOAD_REFUSED,
    LoadOptions,
    Predictor,
    SaveOptions,
    UnsafeModelError,
    detect_flavor,
    get_flavor,
)
from modelyard.models.manifest import Manifest, hash_tree, list_files, sha256_file
from modelyard.models.requirements import check_environment, pinned
from modelyard.models.signature import Signature, infer_signature

__all__ = [
    "EXAMPLE_FILE",
    "REQUIREMENTS_FILE",
    "LoadedModel",
    "example_from_json",
    "example_to_json",
    "load",
    "save",
    "verify",
]

EXAMPLE_FILE = "input_example.json"
REQUIREMENTS_FILE = "requirements.txt"


class LoadedModel:
    """A verified, loaded model package.

    Example::

        model = my.load_model("runs:/4f0c.../model")
        model.predict(df)              # checked against model.signature first
        model.predict_proba(df)        # classifiers (hasattr tells whether there is one)
        model.metadata.requirements    # the manifest, as a Manifest
        model.raw                      # the framework's own object

    - ``metadata``: the package's ``Manifest``; ``signature``: its ``Signature`` or None
      (then inputs go to the model unchecked).
    - ``raw``: the estimator, Booster, ``InferenceSession`` or custom model instance.
    - ``path``: the local package folder.
    """

    def __init__(self, manifest: Manifest, predictor: Predictor, path: Path) -> None:
        self.metadata = manifest
        self.signature: Signature | None = manifest.signature
        self.raw = predictor.raw
        self.path = path
        self._predict = predictor.predict
        self._proba = predictor.predict_proba
        self._enforce = None if manifest.signature is None else manifest.signature.enforce
        self._accepts_matrix = predictor.accepts_matrix

    @property
    def flavor(self) -> str:
        return self.metadata.flavor

    def predict(self, data: Any) -> Any:
        """Predict on a DataFrame, an array, records or a dict of columns."""
        enforce = self._enforce
        return self._predict(data if enforce is None else enforce(data))

    @property
    def predict_proba(self):
        """Class probabilities; an AttributeError when the model has none."""
        if self._proba is None:
            raise AttributeError(f"This {self.flavor} model has no predict_proba")
        return self._predict_proba

    def _predict_proba(self, data: Any) -> Any:
        enforce = self._enforce
        return self._proba(data if enforce is None else enforce(data))

    def matrix_methods(self) -> dict[str, Any] | None:
        """For servers: ``{"predict": fn, "predict_proba": fn}`` taking a 2-D array
        already checked against the (columns) signature, in its column order, when
        the framework computes the same from it as from the DataFrame; else None."""
        sig = self.signature
        if sig is None or sig.kind != "columns" or self._accepts_matrix is None:
            return None
        if not self._accepts_matrix(sig.input_names):
            return None
        methods = {"predict": self._predict}
        if self._proba is not None:
            methods["predict_proba"] = self._proba
        return methods

    @property
    def input_example(self) -> Any:
        """The input example saved with the model, or None."""
        name = self.metadata.input_example
        if not name:
            return None
        return example_from_json(json.loads((self.path / name).read_text(encoding="utf-8")))

    def __repr__(self) -> str:
        return (
            f"<LoadedModel {self.flavor} ({self.metadata.framework} "
            f"{self.metadata.framework_version}) at {str(self.path)!r}>"
        )


def _choose_flavor(model: Any, flavor: str | None, allow_pickle: bool) -> Any:
    if flavor is None:
        return detect_flavor(model, allow_pickle)
    chosen = get_flavor(flavor)
    if chosen.name != "pickle" and not chosen.detect(model):
        raise InvalidParameter(
            f"Flavor {flavor!r} does not take a {type(model).__module__}."
            f"{type(model).__qualname__}; leave flavor=None to pick one by the model's type"
        )
    return chosen


def _signature(
    signature: Any, saved_signature: Signature | None, example: Any, predictor: Any
) -> Signature | None:
    if signature is None or isinstance(signature, Signature):
        return signature
    if not isinstance(signature, str) or signature != "auto":
        raise InvalidParameter(f"signature must be 'auto', a Signature or None, got {signature!r}")
    if saved_signature is not None:
        return saved_signature
    if example is None:
        return None
    inputs = infer_signature(example)
    try:
        output = predictor().predict(inputs.enforce(example))
    except Exception as exc:
        raise InvalidParameter(
            f"Predicting on input_example failed ({type(exc).__name__}: {exc}); fix the "
            "example, or pass signature=None to save without a signature"
        ) from exc
    return infer_signature(example, output)


def save(
    model: Any,
    path: str | os.PathLike,
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | str | None = "auto",
    allow_pickle: bool = False,
    code_paths: Sequence[str | os.PathLike] | None = None,
    artifacts: Mapping[str, str | os.PathLike] | None = None,
    metadata: Mapping[str, Any] | None = None,
    trusted: Sequence[str] | None = None,
) -> Manifest:
    """Save ``model`` as a package in the new folder ``path``; returns its manifest.

    Example::

        my.models.save(clf, "churn-model", input_example=X_test.head())

    - ``flavor``: a flavor name; None picks one by the model's type.
    - ``input_example``: a few rows; stored, and used to infer the signature.
    - ``signature``: "auto" (from the example and a prediction on it; ONNX graphs
      describe themselves), a ``Signature``, or None for no input checks.
    - ``allow_pickle``: let objects no flavor knows be stored with pickle.
    - ``code_paths`` / ``artifacts``: custom Python models' extra code (files or
      folders) and data (name -> local file or folder).
    - ``metadata``: your own plain dict, stored in the manifest.
    - ``trusted``: types (``"module.Class"``) outside skops' defaults you vouch for.
    """
    dest = Path(path)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ResourceAlreadyExists(
            f"{str(dest)!r} already exists: save a model package into a new (or empty) folder"
        )
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InvalidParameter(f"metadata must be a dict, got {type(metadata).__name__}")
    if isinstance(trusted, str):
        raise InvalidParameter("trusted is a list of type names, e.g. ['mymodule.MyEstimator']")
    chosen = _choose_flavor(model, flavor, allow_pickle)
    options = SaveOptions(
        allow_pickle=allow_pickle,
        code_paths=tuple(str(p) for p in code_paths or ()),
        artifacts={str(k): str(v) for k, v in (artifacts or {}).items()},
        trusted=tuple(trusted or ()),
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        saved = chosen.save(model, tmp, options)
        manifest = Manifest(
            flavor=chosen.name,
            framework=saved.framework or chosen.framework,
            framework_version=saved.framework_version,
            python_version=platform.python_version(),
            created_at=now_ms(),
            loader=saved.loader,
            metadata=dict(metadata or {}),
            pickle=saved.pickle,
            trusted=list(saved.trusted),
        )
        if input_example is not None:
            text = json.dumps(example_to_json(input_example), default=str)
            (tmp / EXAMPLE_FILE).write_text(text, encoding="utf-8")
            manifest.input_example = EXAMPLE_FILE

        def predictor() -> Predictor:
            return chosen.load(tmp, manifest, LoadOptions(allow_pickle=allow_pickle))

        manifest.signature = _signature(signature, saved.signature, input_example, predictor)
        frames = manifest.signature is not None and manifest.signature.kind == "columns"
        manifest.requirements = pinned(
            [*saved.requirements, "numpy", *(["pandas"] if frames else [])]
        )
        (tmp / REQUIREMENTS_FILE).write_text("\n".join(manifest.requirements) + "\n")
        manifest.files = hash_tree(tmp)
        manifest.write(tmp)
        if dest.exists():
            dest.rmdir()  # empty, checked above
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def verify(path: str | os.PathLike, manifest: Manifest | None = None) -> Manifest:
    """Check every file of the package against the manifest's hashes; returns the
    manifest. Raises ArtifactIntegrityError naming the first file that differs, is
    missing, or is not listed."""
    root = Path(path)
    manifest = manifest or Manifest.read(root)
    present = set(list_files(root))
    missing = sorted(set(manifest.files) - present)
    if missing:
        raise ArtifactIntegrityError(
            f"Model package {str(root)!r} is incomplete: file {missing[0]!r} listed in its "
            "manifest is missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    extra = sorted(present - set(manifest.files))
    if extra:
        raise ArtifactIntegrityError(
            f"Model package {str(root)!r} holds file {extra[0]!r} that its manifest does "
            "not list (added after saving?)"
            + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
        )
    for rel, expected in manifest.files.items():
        got = sha256_file(root / rel)
        if got != expected:
            raise ArtifactIntegrityError(
                f"Model package {str(root)!r}: file {rel!r} does not match its recorded "
                f"sha256 (expected {expected[:12]}..., got {got[:12]}...): it was changed "
                "or corrupted after saving, so it is not loaded"
            )
    return manifest


def load(path: str | os.PathLike, *, allow_pickle: bool = False) -> LoadedModel:
    """Verify and load the package in the local folder ``path``.

    Pickled packages are refused unless ``allow_pickle=True``; a requirement that
    differs from the running environment gives one warning listing them all."""
    root = Path(path)
    manifest = verify(root)
    if manifest.pickle and not allow_pickle:
        raise UnsafeModelError(
            f"Model package {str(root)!r} is stored with pickle (flavor "
            f"{manifest.flavor!r}). {PICKLE_LOAD_REFUSED}"
        )
    check_environment(manifest.requirements, manifest.python_version)
    predictor = get_flavor(manifest.flavor).load(
        root, manifest, LoadOptions(allow_pickle=allow_pickle)
    )
    return LoadedModel(manifest, predictor, root)


# -- input examples on disk ----------------------------------------------------------
def example_to_json(example: Any) -> dict[str, Any]:
    """A JSON-able form of an input example that ``example_from_json`` rebuilds."""
    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, pd.DataFrame):
        return {
            "type": "dataframe",
            "columns": [str(c) for c in example.columns],
            "dtypes": [str(d) for d in example.dtypes],
            "data": example.astype(object).where(example.notna(), None).values.tolist(),
        }
    if isinstance(example, Mapping) and all(isinstance(v, np.ndarray) for v in example.values()):
        return {"type": "tensors", "data": {str(k): _array_json(v) for k, v in example.items()}}
    if isinstance(example, np.ndarray):
        return {"type": "ndarray", **_array_json(example)}
    if isinstance(example, Mapping | list | tuple):
        return {"type": "json", "data": _plain(example)}
    raise InvalidParameter(
        f"input_example must be a DataFrame, a numpy array, records or a dict, got "
        f"{type(example).__name__}"
    )


def _array_json(arr: np.ndarray) -> dict[str, Any]:
    return {"dtype": str(arr.dtype), "data": arr.tolist()}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def example_from_json(data: Mapping[str, Any]) -> Any:
    kind = data.get("type")
    if kind == "dataframe":
        frame = pd.DataFrame(data["data"], columns=data["columns"])
        for col, dtype in zip(data["columns"], data["dtypes"], strict=True):
            with contextlib.suppress(TypeError, ValueError):  # else keep what JSON gave
                frame[col] = frame[col].astype(dtype)
        return frame
    if kind == "ndarray":
        return np.asarray(data["data"], dtype=data["dtype"])
    if kind == "tensors":
        return {k: np.asarray(v["data"], dtype=v["dtype"]) for k, v in data["data"].items()}
    return data.get("data")
