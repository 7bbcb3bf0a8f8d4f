"""Custom Python models, packaged as source code (never pickled).

A custom model is a class with ``load_context(context)`` and
``predict(context, model_input)`` (``PythonModel`` is an optional base)::

    class Doubler(my.models.PythonModel):
        def load_context(self, context):
            self.factor = float(Path(context.artifacts["factor"]).read_text())

        def predict(self, context, model_input):
            return model_input * self.factor

    my.models.save(Doubler(), "doubler", artifacts={"factor": "factor.txt"})

Saving copies the source file of the class's module into ``code/`` (at its dotted
path, so ``pkg.models.custom`` lands in ``code/pkg/models/custom.py``), plus every
file or folder in ``code_paths`` (by its base name), and every ``artifacts`` entry
(name -> local file or folder) into ``artifacts/<name>/``. The manifest records
``module:qualname``. The instance itself is not stored: at load the class is
imported from ``code/`` and instantiated with no arguments, then ``load_context``
gets the artifacts' local paths. State therefore belongs in artifacts.

Loading imports ``code/`` in isolation: the package's top-level modules are
imported with ``code/`` first on ``sys.path`` and without writing ``__pycache__``
(which would change the package's files), and afterwards ``sys.path`` and
``sys.modules`` are put back, so two packages with same-named modules, or the
original module of this process, never collide. Code in ``code/`` should import
its own modules at module level (or in ``load_context``), not lazily in ``predict``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter
from modelyard.models.flavors import LoadOptions, Predictor, Saved, SaveOptions
from modelyard.models.manifest import Manifest
from modelyard.models.requirements import distributions_for_modules, modules_used_by

__all__ = ["PythonModel", "PythonModelContext"]

name = "pyfunc"
framework = "python"
CODE_DIR = "code"
ARTIFACTS_DIR = "artifacts"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
_import_lock = threading.Lock()


@dataclass(frozen=True)
class PythonModelContext:
    """What ``load_context`` and ``predict`` get: ``artifacts`` maps each name given
    at save time to the local path of its copy; ``model_path`` is the package folder."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_path: str = ""


class PythonModel:
    """Optional base class of custom models; any class with the two methods works."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load state from ``context.artifacts``; called once after instantiation."""

    def predict(self, context: PythonModelContext, model_input: Any) -> Any:
        raise NotImplementedError


def detect(model: Any) -> bool:
    return (
        not isinstance(model, type)
        and callable(getattr(model, "load_context", None))
        and callable(getattr(model, "predict", None))
    )


def _class_source(cls: type) -> tuple[str, Path]:
    """The importable module name of ``cls`` and its source file."""
    if "<locals>" in cls.__qualname__:
        raise InvalidParameter(
            f"{cls.__qualname__} is defined inside a function: define custom model classes "
            "at module level so they can be imported from the package"
        )
    try:
        inspect.signature(cls).bind()
    except TypeError:
        raise InvalidParameter(
            f"{cls.__qualname__}() needs arguments, but a custom model is rebuilt with no "
            "arguments at load: give every __init__ parameter a default and keep state "
            "in artifacts (read them in load_context)"
        ) from None
    except ValueError:  # no signature to inspect (a builtin-backed class)
        pass
    module = sys.modules.get(cls.__module__)
    source = getattr(module, "__file__", None)
    if module is None or not source or not source.endswith(".py"):
        raise InvalidParameter(
            f"The source of {cls.__qualname__} (module {cls.__module__!r}) is not a .py "
            "file: define custom model classes in a Python file, not in a notebook cell "
            "or an interactive session"
        )
    module_name = cls.__module__
    if module_name == "__main__":
        module_name = Path(source).stem
        if not module_name.isidentifier():
            raise InvalidParameter(
                f"The script {source!r} defining {cls.__qualname__} cannot be imported by "
                "name: rename it to a valid Python identifier, or move the class to a module"
            )
    return module_name, Path(source)


def _copy(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, ignore=_IGNORE)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)


def save(model: Any, path: Path, options: SaveOptions) -> Saved:
    cls = type(model)
    module_name, source = _class_source(cls)
    code = path / CODE_DIR
    code.mkdir()
    for entry in options.code_paths:
        src = Path(entry)
        if not src.exists():
            raise InvalidParameter(f"code_paths entry {entry!r} does not exist")
        if (code / src.name).exists():
            raise InvalidParameter(f"Two code_paths entries are named {src.name!r}")
        _copy(src, code / src.name)
    parts = module_name.split(".")
    if source.name == "__init__.py":  # the class lives in a package's __init__
        rel = Path(*parts, "__init__.py")
    else:
        rel = Path(*parts[:-1], f"{parts[-1]}.py")
    if not (code / rel).exists():
        if (code / parts[0]).exists() or (code / f"{parts[0]}.py").exists():
            raise InvalidParameter(
                f"code_paths holds {parts[0]!r} but not {rel.as_posix()}, where "
                f"{cls.__qualname__} is defined"
            )
        _copy(source, code / rel)
    artifacts: dict[str, str] = {}
    for art_name, local in options.artifacts.items():
        if not _NAME_RE.match(art_name):
            raise InvalidParameter(
                f"Artifact name {art_name!r} must be letters, digits, '_', '-' or '.'"
            )
        src = Path(local)
        if not src.exists():
            raise InvalidParameter(f"Artifact {art_name!r}: {str(local)!r} does not exist")
        dest = path / ARTIFACTS_DIR / art_name
        dest = dest if src.is_dir() else dest / src.name
        _copy(src, dest)
        artifacts[art_name] = dest.relative_to(path).as_posix()
    used = modules_used_by(sys.modules[cls.__module__])
    return Saved(
        framework_version=sys.version.split()[0],
        loader={"class": f"{module_name}:{cls.__qualname__}", "code_dir": CODE_DIR}
        | ({"artifacts": artifacts} if artifacts else {}),
        requirements=distributions_for_modules(used),
    )


@contextlib.contextmanager
def _isolated(code: Path) -> Iterator[None]:
    """Import from ``code`` first, then put sys.path and sys.modules back as they were."""
    tops = {p.stem if p.suffix == ".py" else p.name for p in code.iterdir()}

    def ours(mod: str) -> bool:
        return mod.split(".", 1)[0] in tops

    # list(...) copies in one step: other threads (a server's event loop) may import
    # while a model loads, and iterating the live dict would fail mid-way.
    saved = {k: v for k, v in list(sys.modules.items()) if ours(k)}
    for key in saved:
        sys.modules.pop(key, None)
    entry, no_bytecode = str(code), sys.dont_write_bytecode
    sys.path.insert(0, entry)
    sys.dont_write_bytecode = True
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.dont_write_bytecode = no_bytecode
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
        for key in [k for k in list(sys.modules) if ours(k)]:
            sys.modules.pop(key, None)
        sys.modules.update(saved)


def load(path: Path, manifest: Manifest, options: LoadOptions) -> Predictor:
    spec = str(manifest.loader.get("class", ""))
    module_name, _, qualname = spec.partition(":")
    if not module_name or not qualname:
        raise InvalidParameter(f"Model package {str(path)!r} names no class (got {spec!r})")
    code = path / str(manifest.loader.get("code_dir", CODE_DIR))
    artifacts = {k: str(path / v) for k, v in (manifest.loader.get("artifacts") or {}).items()}
    context = PythonModelContext(artifacts, str(path))
    with _import_lock, _isolated(code):
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise InvalidParameter(
                f"Cannot import {spec} from the package's code: {exc}. If it imports a "
                "package that is not installed, install the package's requirements.txt"
            ) from None
        model = target()
        if hasattr(model, "load_context"):
            model.load_context(context)
    proba = getattr(model, "predict_proba", None)
    return Predictor(
        model, partial(model.predict, context), partial(proba, context) if proba else None
    )
