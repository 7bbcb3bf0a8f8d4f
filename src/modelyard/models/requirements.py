"""Pinned requirements of a model package, and the check against the running
environment at load time.

A package pins only what loading it needs (the flavor's framework, numpy, pandas,
skops, ...) from ``importlib.metadata``; at load, every difference goes into one
warning, so a user sees the whole picture at once::

    ModelEnvironmentWarning: This model was saved in another environment:
    scikit-learn: saved 1.9.1, running 1.8.0; skops: saved 0.16.0, not installed
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
import types
import warnings
from collections.abc import Iterable
from functools import lru_cache

__all__ = [
    "ModelEnvironmentWarning",
    "check_environment",
    "differences",
    "distributions_for_modules",
    "modules_used_by",
    "pinned",
]


class ModelEnvironmentWarning(UserWarning):
    """The running environment differs from the one the model was saved in."""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def pinned(dists: Iterable[str]) -> list[str]:
    """``name==version`` for each installed distribution (others are skipped), sorted
    and without repeats."""
    out: dict[str, str] = {}
    for dist in dists:
        version = _version(dist)
        if version is not None:
            out[_norm(dist)] = f"{dist}=={version}"
    return [out[k] for k in sorted(out)]


@lru_cache(maxsize=1)
def _module_owners() -> dict[str, list[str]]:
    return md.packages_distributions()


# Modules whose distribution is named otherwise: answered without scanning every
# installed distribution (``packages_distributions`` reads all their RECORD files,
# ~0.3 s here), which is the fallback for the rest.
_KNOWN_OWNERS = {
    "sklearn": "scikit-learn",
    "yaml": "PyYAML",
    "skl2onnx": "skl2onnx",
    "google": "protobuf",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "dateutil": "python-dateutil",
}


def _owners_of(top: str) -> list[str]:
    known = _KNOWN_OWNERS.get(top)
    if known is not None and _version(known) is not None:
        return [known]
    if _version(top) is not None:  # the common case: the distribution is the module
        return [top]
    return list(_module_owners().get(top, ()))


def distributions_for_modules(modules: Iterable[str]) -> list[str]:
    """The installed distributions providing these (dotted) module names; the
    standard library and unknown modules give none."""
    found: list[str] = []
    for module in modules:
        top = module.split(".", 1)[0]
        if top in sys.stdlib_module_names:
            continue
        for dist in _owners_of(top):
            if dist not in found:
                found.append(dist)
    return found


def modules_used_by(module: types.ModuleType) -> list[str]:
    """Top-level modules that ``module``'s globals come from (imports it made)."""
    seen: list[str] = []
    own = module.__name__.split(".", 1)[0]
    for value in vars(module).values():
        name = value.__name__ if isinstance(value, types.ModuleType) else None
        name = name or getattr(value, "__module__", None)
        if isinstance(name, str):
            top = name.split(".", 1)[0]
            if top not in (own, "builtins", "__main__") and top not in seen:
                seen.append(top)
    return seen


def _parse(requirement: str) -> tuple[str, str | None]:
    name, _, version = requirement.partition("==")
    return name.strip(), (version.strip() or None)


def differences(requirements: Iterable[str], python_version: str = "") -> list[str]:
    """One line per requirement the running environment does not meet exactly, and
    the Python minor version when it differs."""
    out: list[str] = []
    if python_version:
        saved = ".".join(python_version.split(".")[:2])
        running = f"{sys.version_info.major}.{sys.version_info.minor}"
        if saved != running:
            out.append(f"python: saved {python_version}, running {sys.version.split()[0]}")
    for requirement in requirements:
        name, saved_version = _parse(requirement)
        running = _version(name)
        if running is None:
            out.append(f"{name}: saved {saved_version or '(any)'}, not installed")
        elif saved_version is not None and running != saved_version:
            out.append(f"{name}: saved {saved_version}, running {running}")
    return out


def check_environment(requirements: Iterable[str], python_version: str = "") -> list[str]:
    """Warn once (ModelEnvironmentWarning) listing every difference; returns them."""
    found = differences(requirements, python_version)
    if found:
        warnings.warn(
            "This model was saved in another environment: " + "; ".join(found),
            ModelEnvironmentWarning,
            stacklevel=3,
        )
    return found
