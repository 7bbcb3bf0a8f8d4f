"""Flavors: one small plugin per model framework, registered by name.

A flavor is any object (a module, usually) with:

- ``name`` (str) and ``framework`` (the distribution that runs the model, or "python");
- ``detect(model) -> bool``: True for model objects it saves (by type, without
  importing the framework when the object clearly is not one of its models);
- ``save(model, path, options: SaveOptions) -> Saved``: write its files into the
  folder ``path`` (which exists and is empty);
- ``load(path, manifest, options: LoadOptions) -> Predictor``.

The built-in flavors are imported on first use, so ``import modelyard.models`` loads
no framework. Auto-detection tries user flavors first, then the built-ins in
``_BUILTIN`` order (xgboost and lightgbm before sklearn: their sklearn-API models are
scikit-learn estimators too). ``pickle`` is never auto-detected: it is the
explicit fallback for objects no flavor knows, with ``allow_pickle=True``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelyard.core.errors import InvalidParameter

if TYPE_CHECKING:
    from modelyard.models.manifest import Manifest
    from modelyard.models.signature import Signature

__all__ = [
    "PICKLE_LOAD_REFUSED",
    "Flavor",
    "LoadOptions",
    "Predictor",
    "SaveOptions",
    "Saved",
    "UnsafeModelError",
    "detect_flavor",
    "flavor_names",
    "from_package",
    "get_flavor",
    "register_flavor",
    "type_modules",
]

_BUILTIN: dict[str, str] = {
    "pyfunc": "modelyard.models.flavors.pyfunc",
    "onnx": "modelyard.models.flavors.onnx",
    "xgboost": "modelyard.models.flavors.xgboost",
    "lightgbm": "modelyard.models.flavors.lightgbm",
    "sklearn": "modelyard.models.flavors.sklearn",
    "pickle": "modelyard.models.flavors.pickle",
}
_registered: dict[str, Any] = {}

PICKLE_LOAD_REFUSED = (
    "Loading it deserialises pickle, which can run arbitrary code from the file, so it "
    "is refused by default. If you trust where it came from, opt in with "
    "load_model(uri, allow_pickle=True)."
)


class UnsafeModelError(InvalidParameter):
    """Saving or loading would deserialise code or types nobody vouched for (pickle
    without ``allow_pickle=True``, skops types outside its defaults not in ``trusted``)."""


@dataclass(frozen=True)
class SaveOptions:
    allow_pickle: bool = False
    code_paths: tuple[str, ...] = ()
    artifacts: dict[str, str] = field(default_factory=dict)
    trusted: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadOptions:
    allow_pickle: bool = False


@dataclass
class Saved:
    """What a flavor tells the package after writing its files."""

    framework_version: str
    loader: dict[str, Any] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)  # distribution names
    pickle: bool = False
    trusted: list[str] = field(default_factory=list)
    signature: Signature | None = None  # the model's own (ONNX graphs know theirs)
    framework: str | None = None  # when it depends on the model (pickle)


@dataclass
class Predictor:
    """A loaded model: the framework's object and how to call it."""

    raw: Any
    predict: Callable[[Any], Any]
    predict_proba: Callable[[Any], Any] | None = None
    # True when predict/predict_proba also take a 2-D array whose columns are these
    # names in this order (servers skip building a DataFrame per batch then).
    accepts_matrix: Callable[[Sequence[str]], bool] | None = None


class Flavor(Protocol):
    name: str
    framework: str

    def detect(self, model: Any) -> bool: ...
    def save(self, model: Any, path: Path, options: SaveOptions) -> Saved: ...
    def load(self, path: Path, manifest: Manifest, options: LoadOptions) -> Predictor: ...


def register_flavor(flavor: Flavor) -> None:
    """Add (or replace) a flavor; registered flavors are tried before the built-ins."""
    for attr in ("name", "framework", "detect", "save", "load"):
        if not hasattr(flavor, attr):
            raise InvalidParameter(f"A flavor needs a {attr!r} attribute; {flavor!r} has none")
    _registered[flavor.name] = flavor


def flavor_names() -> list[str]:
    return [*_registered, *(n for n in _BUILTIN if n not in _registered)]


def get_flavor(name: str) -> Flavor:
    if name in _registered:
        return _registered[name]
    if name in _BUILTIN:
        return importlib.import_module(_BUILTIN[name])  # type: ignore[return-value]
    raise InvalidParameter(
        f"Unknown model flavor {name!r}: known flavors are {', '.join(flavor_names())}"
    )


def detect_flavor(model: Any, allow_pickle: bool = False) -> Flavor:
    """The flavor for ``model``; pickle only as the opted-in fallback."""
    for name in flavor_names():
        if name == "pickle":
            continue
        flavor = get_flavor(name)
        if flavor.detect(model):
            return flavor
    if allow_pickle:
        return get_flavor("pickle")
    supported = ", ".join(n for n in flavor_names() if n != "pickle")
    raise InvalidParameter(
        f"No model flavor knows {type(model).__module__}.{type(model).__qualname__}. "
        f"Supported flavors: {supported} (a custom Python model is a class with "
        "load_context(context) and predict(context, model_input)). To store it with "
        "pickle instead, pass allow_pickle=True (loading it will need allow_pickle=True "
        "too, since unpickling can run arbitrary code)."
    )


def type_modules(model: Any) -> list[str]:
    """The modules of the classes in ``model``'s type hierarchy (for detection)."""
    return [getattr(cls, "__module__", "") or "" for cls in type(model).__mro__]


def from_package(model: Any, *packages: str) -> bool:
    """True when a class in ``model``'s type hierarchy comes from one of ``packages``."""
    return any(
        mod == pkg or mod.startswith(pkg + ".") for mod in type_modules(model) for pkg in packages
    )
