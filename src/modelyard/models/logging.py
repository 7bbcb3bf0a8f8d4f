"""``my.log_model``: save a model package into the active run's artifacts.

The package lands at ``<run artifacts>/<name>/`` and is loadable as
``runs:/<run_id>/<name>``. The run gets a tag ``modelyard.models``: a JSON list of
``{"name", "flavor", "signature"}``, one entry per logged model (so listings can
show which runs hold models without reading artifacts).

Registration is delegated: when ``registered_model_name`` is given, ``log_model``
calls ``REGISTER_HOOK(name, model_info)``, which the model registry sets when it is
imported and which returns the new model version. Without it, ``log_model`` refuses
before writing anything.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import posixpath
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.core.artifacts import check_relative_path
from modelyard.core.errors import InvalidParameter, InvalidState, ResourceAlreadyExists
from modelyard.models import package
from modelyard.models.signature import Signature
from modelyard.sdk import fluent

__all__ = ["MODELS_TAG", "REGISTER_HOOK", "ModelInfo", "log_model"]

MODELS_TAG = "modelyard.models"
_MAX_TAG = 8000

# Set by the model registry: (registered model name, ModelInfo) -> model version.
REGISTER_HOOK: Callable[[str, ModelInfo], Any] | None = None


@dataclass(frozen=True)
class ModelInfo:
    """Where a logged model is and what it is.

    - ``model_uri``: ``runs:/<run_id>/<name>``, for ``my.load_model`` or registering.
    - ``registered_version``: what the registry returned, when ``registered_model_name``
      was given.
    """

    model_uri: str
    run_id: str
    name: str
    flavor: str
    signature: Signature | None
    registered_version: Any = None


def _summary(name: str, flavor: str, signature: Signature | None) -> dict[str, Any]:
    sig = None
    if signature is not None:
        sig = {
            "kind": signature.kind,
            "inputs": [f"{f.name}:{f.dtype}" for f in signature.inputs[:30]],
            "outputs": [f"{f.name}:{f.dtype}" for f in signature.outputs[:10]],
        }
        if len(signature.inputs) > 30:
            sig["inputs_total"] = len(signature.inputs)
    return {"name": name, "flavor": flavor, "signature": sig}


def _tag_value(existing: str | None, entry: dict[str, Any]) -> str:
    try:
        entries = json.loads(existing) if existing else []
        entries = entries if isinstance(entries, list) else []
    except ValueError:
        entries = []
    entries = [e for e in entries if not (isinstance(e, dict) and e.get("name") == entry["name"])]
    entries.append(entry)
    text = json.dumps(entries, separators=(",", ":"))
    while len(text) > _MAX_TAG and len(entries) > 1:  # keep the newest that fit
        entries.pop(0)
        text = json.dumps(entries, separators=(",", ":"))
    if len(text) > _MAX_TAG:
        text = json.dumps([{k: entry[k] for k in ("name", "flavor")}])
    return text


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    signature: Signature | str | None = "auto",
    allow_pickle: bool = False,
    code_paths: Sequence[str | os.PathLike] | None = None,
    artifacts: Mapping[str, str | os.PathLike] | None = None,
    metadata: Mapping[str, Any] | None = None,
    registered_model_name: str | None = None,
    trusted: Sequence[str] | None = None,
) -> ModelInfo:
    """Save ``model`` as a package into the active run, under ``name``.

    Example::

        with my.start_run():
            clf.fit(X, y)
            info = my.log_model(clf, "model", input_example=X.head())
        my.load_model(info.model_uri).predict(X)

    The keyword arguments are those of ``my.models.save``; ``registered_model_name``
    also registers the logged model as a new version of that registered model.
    """
    active = fluent.active_run()
    if active is None:
        raise InvalidState(
            "No active run: call my.start_run() first (or use `with my.start_run():`)"
        )
    rel = check_relative_path(str(name))
    if not rel:
        raise InvalidParameter(
            f"Invalid model name {name!r}: give a relative artifact path such as 'model'"
        )
    if registered_model_name is not None and REGISTER_HOOK is None:
        importlib.import_module("modelyard.sdk.registry").install()  # sets the hook
    hook = REGISTER_HOOK
    if registered_model_name is not None and hook is None:
        raise InvalidState(
            "registered_model_name needs the model registry, which is not available "
            "(import modelyard.registry, or register the logged model_uri later)"
        )
    parent, leaf = posixpath.split(rel)
    svc = fluent.client()
    run_id = active.run_id
    if svc.list_artifacts(run_id, rel):
        raise ResourceAlreadyExists(
            f"Run {run_id} already has artifacts at {rel!r}: log the model under another name"
        )
    with tempfile.TemporaryDirectory(prefix="modelyard-model-") as tmp:
        manifest = package.save(
            model,
            Path(tmp) / leaf,
            input_example=input_example,
            signature=signature,
            allow_pickle=allow_pickle,
            code_paths=code_paths,
            artifacts=artifacts,
            metadata=metadata,
            trusted=trusted,
        )
        svc.log_artifact(run_id, Path(tmp) / leaf, parent or None)
    existing = svc.get_run(run_id).data.tags.get(MODELS_TAG)
    entry = _summary(rel, manifest.flavor, manifest.signature)
    svc.set_tag(run_id, MODELS_TAG, _tag_value(existing, entry))
    info = ModelInfo(f"runs:/{run_id}/{rel}", run_id, rel, manifest.flavor, manifest.signature)
    if registered_model_name is not None and hook is not None:
        info = dataclasses.replace(info, registered_version=hook(registered_model_name, info))
    return info
