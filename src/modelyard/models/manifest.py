"""The manifest of a model package (``modelyard-model.yaml``) and file hashing.

Example manifest::

    format_version: 1
    flavor: sklearn
    framework: scikit-learn
    framework_version: 1.9.1
    python_version: 3.11.9
    created_at: 1767225600000
    signature:
      kind: columns
      inputs:
      - {name: sepal length (cm), dtype: float64}
      outputs:
      - {name: output, dtype: int64, shape: [-1]}
    input_example: input_example.json
    requirements: [numpy==2.4.6, pandas==3.1.1, scikit-learn==1.9.1, skops==0.16.0]
    files: {input_example.json: 3b1f..., model.skops: 9ac0...}
    loader: {model_file: model.skops}
    metadata: {}
    pickle: false
    trusted: []

``files`` holds the SHA-256 of every file of the package except the manifest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelyard.core.errors import InvalidParameter, ResourceNotFound
from modelyard.models.signature import Signature

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "Manifest",
    "hash_tree",
    "list_files",
    "sha256_file",
]

MANIFEST_FILE = "modelyard-model.yaml"
FORMAT_VERSION = 1
# The artifact store keeps a `.<name>.my-meta` sidecar beside each file it stores; a
# package read straight from a local artifact folder has them, and they are not ours.
_STORE_SIDECAR = ".my-meta"
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Manifest:
    """What a package holds and how to load it (see the module docstring for the file).

    - ``flavor``: the registered flavor that saved it and loads it.
    - ``framework`` / ``framework_version``: the library that runs the model.
    - ``requirements``: ``name==version`` pins of what loading needs.
    - ``files``: relative path -> SHA-256 of every other file in the package.
    - ``loader``: the flavor's own parameters (``model_file``, wrapper class, ...).
    - ``pickle``: True when loading deserialises pickle (needs ``allow_pickle=True``).
    - ``trusted``: types the user trusted explicitly at save time (skops).
    """

    flavor: str
    framework: str
    framework_version: str
    python_version: str
    created_at: int
    signature: Signature | None = None
    input_example: str | None = None
    requirements: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    loader: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    pickle: bool = False
    trusted: list[str] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "python_version": self.python_version,
            "created_at": self.created_at,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "requirements": list(self.requirements),
            "files": dict(sorted(self.files.items())),
            "loader": dict(self.loader),
            "metadata": dict(self.metadata),
            "pickle": bool(self.pickle),
            "trusted": list(self.trusted),
        }

    def to_yaml(self) -> str:
        try:
            return yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        except yaml.YAMLError as exc:
            raise InvalidParameter(
                f"The model manifest cannot be written: {exc}. metadata and loader values "
                "must be plain str, int, float, bool, list or dict"
            ) from None

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> Manifest:
        if not isinstance(data, dict):
            raise InvalidParameter(f"{where} is not a mapping")
        version = data.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise InvalidParameter(f"{where} has no valid format_version (got {version!r})")
        if version > FORMAT_VERSION:
            raise InvalidParameter(
                f"{where} has format_version {version}; this modelyard reads up to "
                f"{FORMAT_VERSION}: upgrade modelyard to load it"
            )
        missing = [k for k in ("flavor", "framework", "created_at") if k not in data]
        if missing:
            raise InvalidParameter(f"{where} lacks {', '.join(missing)}")
        files = data.get("files") or {}
        if not isinstance(files, dict):
            raise InvalidParameter(f"{where}: 'files' must map paths to sha256 hashes")
        sig = data.get("signature")
        return cls(
            flavor=str(data["flavor"]),
            framework=str(data["framework"]),
            framework_version=str(data.get("framework_version") or ""),
            python_version=str(data.get("python_version") or ""),
            created_at=int(data["created_at"]),
            signature=None if sig is None else Signature.from_dict(sig),
            input_example=data.get("input_example"),
            requirements=[str(r) for r in data.get("requirements") or []],
            files={str(k): str(v) for k, v in files.items()},
            loader=dict(data.get("loader") or {}),
            metadata=dict(data.get("metadata") or {}),
            pickle=bool(data.get("pickle", False)),
            trusted=[str(t) for t in data.get("trusted") or []],
            format_version=version,
        )

    @classmethod
    def read(cls, package: str | os.PathLike) -> Manifest:
        path = Path(package) / MANIFEST_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ResourceNotFound(
                f"{str(package)!r} is not a model package: it has no {MANIFEST_FILE}"
            ) from None
        try:
            data = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            raise InvalidParameter(f"{path} is not valid YAML: {exc}") from None
        return cls.from_dict(data, where=str(path))

    def write(self, package: str | os.PathLike) -> Path:
        path = Path(package) / MANIFEST_FILE
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root: str | os.PathLike) -> list[str]:
    """Posix relative paths of every file under ``root`` but the manifest (and the
    artifact store's sidecars), sorted."""
    base = Path(root)
    out: list[str] = []
    for dirpath, _dirs, names in os.walk(base):
        for name in names:
            if not name.endswith(_STORE_SIDECAR):
                rel = (Path(dirpath) / name).relative_to(base).as_posix()
                if rel != MANIFEST_FILE:
                    out.append(rel)
    return sorted(out)


def hash_tree(root: str | os.PathLike) -> dict[str, str]:
    """``{posix relative path: sha256}`` of every file ``list_files`` lists."""
    base = Path(root)
    return {rel: sha256_file(base / rel) for rel in list_files(base)}
