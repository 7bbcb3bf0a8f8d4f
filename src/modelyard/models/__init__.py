"""Model packages: save, log, verify and load models in safe, self-describing folders.

    import modelyard as my

    my.models.save(clf, "churn-model", input_example=X.head())   # a local package
    with my.start_run():
        info = my.log_model(clf, "model", input_example=X.head())  # into the run
    model = my.load_model(info.model_uri)       # or a path, s3://..., models:/churn@prod
    model.predict(X)                            # checked against the signature

Frameworks (scikit-learn, XGBoost, LightGBM, onnxruntime) are imported by their
flavor on first use only.
"""

from __future__ import annotations

from modelyard.models.flavors import (
    UnsafeModelError,
    flavor_names,
    register_flavor,
)
from modelyard.models.flavors.pyfunc import PythonModel, PythonModelContext
from modelyard.models.loader import download_model, load_model, register_scheme, resolve_uri
from modelyard.models.logging import ModelInfo, log_model
from modelyard.models.manifest import MANIFEST_FILE, Manifest
from modelyard.models.package import LoadedModel, load, save, verify
from modelyard.models.requirements import ModelEnvironmentWarning
from modelyard.models.signature import FieldSpec, Signature, SignatureWarning, infer_signature

__all__ = [
    "MANIFEST_FILE",
    "FieldSpec",
    "LoadedModel",
    "Manifest",
    "ModelEnvironmentWarning",
    "ModelInfo",
    "PythonModel",
    "PythonModelContext",
    "Signature",
    "SignatureWarning",
    "UnsafeModelError",
    "download_model",
    "flavor_names",
    "infer_signature",
    "load",
    "load_model",
    "log_model",
    "register_flavor",
    "register_scheme",
    "resolve_uri",
    "save",
    "verify",
]
