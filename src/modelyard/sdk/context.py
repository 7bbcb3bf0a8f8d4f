"""What a run records about where it came from: git commit, entry point, Python and
package versions — read cheaply (no subprocess, no imports of packages not loaded)."""

from __future__ import annotations

import functools
import platform
import sys
from pathlib import Path

__all__ = ["run_context_tags"]

# Packages whose versions matter for reproducing a model, recorded when loaded.
_TRACKED_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "sklearn",
    "xgboost",
    "lightgbm",
    "torch",
    "tensorflow",
    "onnx",
    "onnxruntime",
    "pyarrow",
    "polars",
)


def _entry_point() -> Path | None:
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    return Path(file).resolve() if file else None


def _git_commit(start: Path) -> tuple[str, str] | None:
    """(commit, repo root) by reading .git directly; None outside a repository."""
    for folder in (start, *start.parents):
        git = folder / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (folder / text.split(":", 1)[1].strip()).resolve()
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref:"):
                return head, str(folder)
            ref = head.split(":", 1)[1].strip()
            ref_file = git / ref
            if ref_file.is_file():
                return ref_file.read_text().strip(), str(folder)
            packed = git / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split(" ", 1)[0], str(folder)
            return None  # a branch without commits yet
        except OSError:
            return None
    return None


def _package_versions() -> str:
    """Versions of the tracked packages loaded now (a package imported later shows up
    in later runs)."""
    return ", ".join(filter(None, (_version_of(m) for m in _TRACKED_PACKAGES if m in sys.modules)))


@functools.cache
def _version_of(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    dist = {"sklearn": "scikit-learn"}.get(module, module)
    try:
        return f"{dist}=={version(dist)}"
    except PackageNotFoundError:
        return None


def run_context_tags() -> dict[str, str]:
    """MLflow's system tags (so MLflow UIs show them) plus modelyard's own."""
    tags = dict(_static_context())
    packages = _package_versions()
    if packages:
        tags["modelyard.packages"] = packages
    return tags


@functools.cache
def _static_context() -> dict[str, str]:
    """What cannot change within a process: read once."""
    from modelyard._version import __version__

    tags = {
        "mlflow.source.type": "LOCAL",
        "modelyard.python_version": platform.python_version(),
        "modelyard.version": __version__,
    }
    entry = _entry_point()
    if entry is not None:
        tags["mlflow.source.name"] = str(entry)
        found = _git_commit(entry.parent)
    else:
        found = _git_commit(Path.cwd())
    if found:
        tags["mlflow.source.git.commit"] = found[0]
        tags["mlflow.source.git.repoURL"] = found[1]
    return tags
